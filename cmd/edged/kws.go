package main

import (
	"encoding/json"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

type kwsFileResult struct {
	File   string             `json:"file"`
	Label  string             `json:"label"`
	Score  float64            `json:"score"`
	Scores map[string]float64 `json:"scores"`
	// Window is the start of the one-window span scored, for files longer
	// than the classifier's window.
	WindowStartMS int64 `json:"window_start_ms"`
}

type kwsEvent struct {
	Keyword   string  `json:"keyword"`
	Score     float64 `json:"score"`
	StartMS   int64   `json:"start_ms"`
	EndMS     int64   `json:"end_ms"`
	EmittedMS int64   `json:"emitted_ms"`
	File      string  `json:"file"`
}

func runKWS(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kws", "--model M --frontend P --labels L [--stream] [--json] FILE.wav...", stderr)
	modelPath := fs.String("model", "", "keyword classifier .tflite (e.g. micro_speech_quantized.tflite)")
	frontendPath := fs.String("frontend", "", "feature frontend .tflite (e.g. audio_preprocessor_int8.tflite)")
	labelsPath := fs.String("labels", "", "labels file, one per classifier output")
	stream := fs.Bool("stream", false, "treat the files as one continuous stream and print keyword events")
	asJSON := fs.Bool("json", false, "one JSON object per file (or per event with --stream)")
	threshold := fs.Float64("threshold", pipeline.DefaultKeywordThreshold, "smoothed score a keyword must reach (--stream)")
	smooth := fs.Duration("smooth", pipeline.DefaultSmoothWindow, "score smoothing window (--stream)")
	refractory := fs.Duration("refractory", 1500*time.Millisecond, "quiet time after an event (--stream)")
	stride := fs.Duration("stride", 20*time.Millisecond, "hop between feature frames")
	inferEvery := fs.Int("infer-every", 1, "run the classifier every N feature frames (--stream)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	files := fs.Args()
	if *modelPath == "" || *frontendPath == "" || *labelsPath == "" {
		return usagef("--model, --frontend and --labels are required")
	}
	if len(files) == 0 {
		return usagef("no WAV files given")
	}
	labels, err := pipeline.LoadLabels(*labelsPath)
	if err != nil {
		return err
	}
	model, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	frontend, err := runtime.LoadModelFile(*frontendPath)
	if err != nil {
		return err
	}
	cfg := pipeline.KeywordConfig{Labels: labels, FrameStride: *stride, InferEvery: *inferEvery,
		SmoothWindow: *smooth, Threshold: *threshold, Refractory: *refractory}
	ks, err := pipeline.NewKeywordSpotter(frontend, model, cfg)
	if err != nil {
		return err
	}
	const rate = 16000
	enc := json.NewEncoder(stdout)
	if !*stream {
		for _, f := range files {
			pcm, _, err := sensors.ReadWAVFile(f, rate)
			if err != nil {
				return err
			}
			res, err := classifyFile(ks, pcm, labels)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			res.File = f
			if *asJSON {
				if err := enc.Encode(res); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(stdout, "%s: %s %.3f", f, res.Label, res.Score)
			for _, l := range labels {
				fmt.Fprintf(stdout, "  %s=%.3f", l, res.Scores[l])
			}
			fmt.Fprintln(stdout)
		}
		return nil
	}

	cpuStart := cpuTime()
	var audio time.Duration
	var events int
	for _, f := range files {
		pcm, _, err := sensors.ReadWAVFile(f, rate)
		if err != nil {
			return err
		}
		var emitErr error
		err = ks.Process(pcm, func(e pipeline.KeywordEvent) {
			events++
			ev := kwsEvent{Keyword: e.Keyword, Score: e.Score, StartMS: e.Start.Milliseconds(), EndMS: e.End.Milliseconds(), EmittedMS: e.Emitted.Milliseconds(), File: f}
			if *asJSON {
				if err := enc.Encode(ev); err != nil && emitErr == nil {
					emitErr = err
				}
				return
			}
			fmt.Fprintf(stdout, "%10.3fs  %-10s score %.3f  window %.3f-%.3fs  reported at %.3fs\n",
				e.Start.Seconds(), e.Keyword, e.Score, e.Start.Seconds(), e.End.Seconds(), e.Emitted.Seconds())
		})
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if emitErr != nil {
			return emitErr
		}
		audio += time.Duration(len(pcm)) * time.Second / rate
	}
	cpu := cpuTime() - cpuStart
	rtf := 0.0
	if cpu > 0 {
		rtf = audio.Seconds() / cpu.Seconds()
	}
	line := fmt.Sprintf("real-time factor: %.1f (%.1f s of audio in %.3f s of CPU, %d events)", rtf, audio.Seconds(), cpu.Seconds(), events)
	if *asJSON {
		return enc.Encode(map[string]any{"audio_seconds": audio.Seconds(), "cpu_seconds": cpu.Seconds(), "real_time_factor": rtf, "events": events})
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// classifyFile scores a clip: one window for a clip up to the classifier's
// window; for longer recordings, every window at each stride, keeping the one
// whose best keyword (not silence or unknown) scores highest.
func classifyFile(ks *pipeline.KeywordSpotter, pcm []int16, labels []string) (kwsFileResult, error) {
	scores, err := ks.Classify(pcm, nil)
	if err != nil {
		return kwsFileResult{}, err
	}
	res := resultFromScores(scores, labels)
	window := int(ks.WindowDuration() * 16000 / time.Second)
	if len(pcm) <= window {
		return res, nil
	}
	stride := 320
	bestScore := -1.0
	if !pipeline.IsFillerLabel(res.Label) {
		bestScore = res.Score
	}
	for off := stride; off+window <= len(pcm); off += stride {
		s, err := ks.Classify(pcm[off:off+window], scores)
		if err != nil {
			return kwsFileResult{}, err
		}
		r := resultFromScores(s, labels)
		if !pipeline.IsFillerLabel(r.Label) && r.Score > bestScore {
			bestScore = r.Score
			res = r
			res.WindowStartMS = int64(off) * 1000 / 16000
		}
	}
	return res, nil
}

func resultFromScores(scores []float32, labels []string) kwsFileResult {
	r := kwsFileResult{Scores: map[string]float64{}, Score: -1}
	for i, s := range scores {
		r.Scores[labels[i]] = float64(s)
		if float64(s) > r.Score {
			r.Score, r.Label = float64(s), labels[i]
		}
	}
	return r
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
