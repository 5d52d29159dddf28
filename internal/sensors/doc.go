// Package sensors holds edged's sources of sensor data and the decoding
// they need.
//
// Sources deliver values through Source[T].Run(ctx, emit): audio chunks
// (AudioSource: mono int16 PCM at a chosen rate), camera frames
// (FrameSource: *Frame in one of the pixel formats) and GPIO events
// (GPIOInput). A value passed to emit belongs to the source again once
// emit returns; consumers process it synchronously or copy it.
//
//   - microphone: a command writing raw S16_LE PCM (default arecord), WAV
//     files or folders (resampled, paced in real time or as fast as
//     possible, optionally looped), synthetic tone, noise or silence;
//   - camera: V4L2 devices (YUYV or Motion-JPEG, memory-mapped streaming
//     through ioctls), a command writing raw frames (rpicam-vid, ffmpeg),
//     image files or folders, synthetic moving scenes;
//   - GPIO through periph.io: an input with edge detection (a PIR motion
//     sensor) and an LED output that flashes without blocking.
//
// Supervise runs a source and restarts it with exponential backoff
// whenever it fails, reporting each state change; SourceConfig is the
// configuration file's entry for a source, and NewAudioSource,
// NewFrameSource, NewGPIOInput and NewLED build sources from it.
//
// The package also decodes WAV recordings (WAVReader, ReadWAVFile) and
// resamples audio to a model's rate (Resampler), and decodes BMP, PNG
// and JPEG files into frames (DecodeImage). It imports nothing of edged's.
package sensors
