package sensors_test

import (
	"context"
	"log"
	"sync"
	"time"

	"github.com/edged/edged/internal/sensors"
)

// How the daemon wires a configured microphone and camera: build the
// sources from their configuration entries, then run each under
// Supervise, which restarts it with backoff whenever it fails and
// reports every state change.
func ExampleSupervise() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	mic, err := sensors.NewAudioSource(sensors.SourceConfig{Name: "mic", Type: "microphone", Synthetic: "tone:440"})
	if err != nil {
		log.Fatal(err) // a ConfigErrors listing every problem with its key
	}
	cam, err := sensors.NewFrameSource(sensors.SourceConfig{Name: "cam", Type: "camera", Synthetic: "shapes", Width: 320, Height: 240})
	if err != nil {
		log.Fatal(err)
	}
	onStatus := func(s sensors.Status) { log.Print(s) } // and publish it on <prefix>/status

	var wg sync.WaitGroup
	wg.Go(func() {
		sensors.Supervise(ctx, mic, func(pcm []int16) {
			// kws.Process(pcm, ...): synchronously, or copy pcm first
		}, sensors.SuperviseOptions{RestartMin: time.Second, RestartMax: time.Minute, OnStatus: onStatus})
	})
	wg.Go(func() {
		sensors.Supervise(ctx, cam, func(f *sensors.Frame) {
			// copy f into the pipeline's bounded queue (the source reuses it)
		}, sensors.SuperviseOptions{OnStatus: onStatus})
	})
	wg.Wait() // both return when ctx is done
}
