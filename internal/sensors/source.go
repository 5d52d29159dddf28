package sensors

import "context"

// Source is a sensor source delivering values of type T: audio chunks
// ([]int16), camera frames (*Frame) or GPIO events (GPIOEvent).
//
// Run delivers values to emit until ctx is done, the source fails or (for a
// finite source: WAV or image files without loop) the input ends:
//
//   - ctx done: Run returns ctx.Err() promptly (well under a second), with
//     every process, file, device and goroutine it started released;
//   - failure (command exited, device unplugged or stalled, file
//     unreadable): Run returns an error saying what failed and where;
//   - input ended: Run returns nil.
//
// emit is called from the goroutine that called Run, never concurrently,
// and never after Run has returned. A value passed to emit is valid only
// until emit returns: the source reuses the chunk's or frame's memory for
// the next one.
// A consumer processes it synchronously or copies it, and treats it as
// read-only. A slow emit holds the source up (a live device then drops
// input: ALSA overruns, V4L2 drops frames); bounded queues that drop the
// oldest belong to the consumer.
//
// Run may be called again after it returns (Supervise does, to restart a
// failed source), but not concurrently.
type Source[T any] interface {
	// Name is the source's configured name.
	Name() string
	Run(ctx context.Context, emit func(T)) error
}

// AudioSource delivers mono 16-bit PCM at Rate samples per second, in
// chunks of the configured duration (the last chunk of a finite source
// may be shorter).
type AudioSource interface {
	Source[[]int16]
	// Rate is the sample rate of the emitted PCM in Hz.
	Rate() int
}

// FrameSource delivers camera frames. A frame's size and pixel format
// are the source's (a V4L2 driver may adjust the requested size; an
// image folder's frames have each image's size).
type FrameSource interface {
	Source[*Frame]
}
