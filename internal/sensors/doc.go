// Package sensors holds edged's sources of sensor data. So far: decoding
// WAV recordings (the simulator's microphone and `edged kws`) and
// resampling audio to a model's rate.
package sensors
