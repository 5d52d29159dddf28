package sensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// WAV format codes edged reads (RIFF WAVE "fmt " wFormatTag).
const (
	wavFormatPCM        = 1
	wavFormatIEEEFloat  = 3
	wavFormatExtensible = 0xFFFE
)

// WAVFormat describes a WAV file's audio.
type WAVFormat struct {
	SampleRate    int
	Channels      int
	BitsPerSample int
	Float         bool
	// Frames is the number of sample frames the header announces; -1 when
	// the writer left it open (streamed from a recorder).
	Frames int64
}

func (f WAVFormat) String() string {
	kind := "PCM"
	if f.Float {
		kind = "float"
	}
	return fmt.Sprintf("%d Hz, %d channel(s), %d-bit %s", f.SampleRate, f.Channels, f.BitsPerSample, kind)
}

// WAVReader decodes a RIFF WAVE stream into mono float samples in [-1, 1):
// 8-bit unsigned, 16/24/32-bit signed PCM and 32/64-bit float, any number of
// channels (averaged into one), WAVE_FORMAT_EXTENSIBLE included.
type WAVReader struct {
	Format    WAVFormat
	r         *bufio.Reader
	remaining int64 // bytes of sample data left; -1 = until EOF
	frameSize int
	buf       []byte
	name      string
}

// ErrNotWAV says the stream is not a RIFF WAVE file.
var ErrNotWAV = errors.New("not a RIFF WAVE file")

// NewWAVReader reads the header of a WAV stream, up to the start of its
// sample data. name is used in errors.
func NewWAVReader(r io.Reader, name string) (*WAVReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", name, ErrNotWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		if string(hdr[0:4]) == "RF64" {
			return nil, fmt.Errorf("%s: RF64 (WAV over 4 GiB) is not supported", name)
		}
		return nil, fmt.Errorf("%s: %w", name, ErrNotWAV)
	}
	w := &WAVReader{r: br, name: name}
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			if !haveFmt {
				return nil, fmt.Errorf("%s: no \"fmt \" chunk before the end of the file", name)
			}
			return nil, fmt.Errorf("%s: no \"data\" chunk before the end of the file", name)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if err := w.readFmt(size); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%s: \"data\" chunk before the \"fmt \" chunk", name)
			}
			w.frameSize = w.Format.Channels * w.Format.BitsPerSample / 8
			// Recorders writing to a pipe cannot know the length and leave
			// 0 or 0xFFFFFFFF: read to the end.
			if size == 0 || size == 0xFFFFFFFF {
				w.remaining = -1
				w.Format.Frames = -1
			} else {
				w.remaining = size - size%int64(w.frameSize)
				w.Format.Frames = w.remaining / int64(w.frameSize)
			}
			return w, nil
		default:
			// LIST, fact, cue, ... (chunks are padded to an even size).
			if _, err := br.Discard(int(size + size%2)); err != nil {
				return nil, fmt.Errorf("%s: chunk %q of %d bytes runs past the end of the file", name, id, size)
			}
		}
	}
}

func (w *WAVReader) readFmt(size int64) error {
	if size < 16 || size > 1<<16 {
		return fmt.Errorf("%s: \"fmt \" chunk of %d bytes", w.name, size)
	}
	b := make([]byte, size+size%2)
	if _, err := io.ReadFull(w.r, b); err != nil {
		return fmt.Errorf("%s: truncated \"fmt \" chunk", w.name)
	}
	tag := binary.LittleEndian.Uint16(b[0:])
	f := WAVFormat{
		Channels:      int(binary.LittleEndian.Uint16(b[2:])),
		SampleRate:    int(binary.LittleEndian.Uint32(b[4:])),
		BitsPerSample: int(binary.LittleEndian.Uint16(b[14:])),
	}
	if tag == wavFormatExtensible {
		if size < 40 {
			return fmt.Errorf("%s: WAVE_FORMAT_EXTENSIBLE header of %d bytes, want 40", w.name, size)
		}
		// The sub-format GUID starts with the format code.
		tag = binary.LittleEndian.Uint16(b[24:])
	}
	switch tag {
	case wavFormatPCM:
		switch f.BitsPerSample {
		case 8, 16, 24, 32:
		default:
			return fmt.Errorf("%s: %d-bit PCM is not supported (8, 16, 24 or 32)", w.name, f.BitsPerSample)
		}
	case wavFormatIEEEFloat:
		if f.BitsPerSample != 32 && f.BitsPerSample != 64 {
			return fmt.Errorf("%s: %d-bit float is not supported (32 or 64)", w.name, f.BitsPerSample)
		}
		f.Float = true
	case 6, 7:
		return fmt.Errorf("%s: A-law/µ-law WAV is not supported; convert it to PCM (e.g. sox in.wav -e signed -b 16 out.wav)", w.name)
	default:
		return fmt.Errorf("%s: WAV format code %#x is not supported (PCM or IEEE float only)", w.name, tag)
	}
	if f.Channels < 1 || f.Channels > 64 {
		return fmt.Errorf("%s: %d channels", w.name, f.Channels)
	}
	if f.SampleRate < 1000 || f.SampleRate > 384000 {
		return fmt.Errorf("%s: sample rate %d Hz is not plausible", w.name, f.SampleRate)
	}
	w.Format = f
	return nil
}

// Read decodes up to len(dst) mono samples. It returns io.EOF after the
// last sample; a data chunk cut short by the end of the file ends the
// stream there.
func (w *WAVReader) Read(dst []float32) (int, error) {
	if w.remaining == 0 {
		return 0, io.EOF
	}
	want := len(dst) * w.frameSize
	if w.remaining > 0 && int64(want) > w.remaining {
		want = int(w.remaining)
	}
	if cap(w.buf) < want {
		w.buf = make([]byte, want)
	}
	buf := w.buf[:want]
	n, err := io.ReadFull(w.r, buf)
	n -= n % w.frameSize
	if w.remaining > 0 {
		w.remaining -= int64(n)
	}
	frames := n / w.frameSize
	w.decode(buf[:n], dst[:frames])
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		w.remaining = 0
		if frames == 0 {
			return 0, io.EOF
		}
		return frames, nil
	case err != nil:
		return frames, fmt.Errorf("%s: %w", w.name, err)
	}
	return frames, nil
}

func (w *WAVReader) decode(b []byte, dst []float32) {
	ch := w.Format.Channels
	bps := w.Format.BitsPerSample / 8
	inv := 1 / float32(ch)
	for i := range dst {
		var sum float32
		for c := range ch {
			s := b[(i*ch+c)*bps:]
			sum += sampleValue(s, bps, w.Format.Float)
		}
		dst[i] = sum * inv
	}
}

func sampleValue(s []byte, bps int, isFloat bool) float32 {
	if isFloat {
		if bps == 4 {
			return math.Float32frombits(binary.LittleEndian.Uint32(s))
		}
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(s)))
	}
	switch bps {
	case 1:
		return (float32(s[0]) - 128) / 128
	case 2:
		return float32(int16(binary.LittleEndian.Uint16(s))) / (1 << 15)
	case 3:
		v := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
		return float32(v) / (1 << 23)
	default:
		return float32(int32(binary.LittleEndian.Uint32(s))) / (1 << 31)
	}
}

// ReadWAVFile decodes a whole WAV file to mono int16 samples at rate Hz,
// resampling when the file's rate differs. 16-bit mono files at rate pass
// through unchanged, sample for sample.
func ReadWAVFile(path string, rate int) ([]int16, WAVFormat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, WAVFormat{}, err
	}
	defer f.Close()
	return DecodeWAV(f, path, rate)
}

// DecodeWAV is ReadWAVFile for a WAV stream; name is used in errors.
func DecodeWAV(r io.Reader, name string, rate int) ([]int16, WAVFormat, error) {
	w, err := NewWAVReader(r, name)
	if err != nil {
		return nil, WAVFormat{}, err
	}
	var samples []float32
	if w.Format.Frames > 0 {
		samples = make([]float32, 0, w.Format.Frames)
	}
	chunk := make([]float32, 4096)
	for {
		n, err := w.Read(chunk)
		samples = append(samples, chunk[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, w.Format, err
		}
	}
	if w.Format.SampleRate != rate {
		rs, err := NewResampler(w.Format.SampleRate, rate)
		if err != nil {
			return nil, w.Format, fmt.Errorf("%s: %w", name, err)
		}
		samples = rs.Flush(rs.Process(samples, nil))
	}
	return FloatToInt16(samples, nil), w.Format, nil
}

// FloatToInt16 converts samples in [-1, 1) to int16, rounding and
// saturating, appending to dst. An int16 sample converted to float by
// WAVReader comes back unchanged.
func FloatToInt16(src []float32, dst []int16) []int16 {
	for _, v := range src {
		x := math.Round(float64(v) * (1 << 15))
		if x > math.MaxInt16 {
			x = math.MaxInt16
		} else if x < math.MinInt16 {
			x = math.MinInt16
		}
		dst = append(dst, int16(x))
	}
	return dst
}

// EncodeWAV renders mono 16-bit PCM at rate Hz as a WAV file.
func EncodeWAV(pcm []int16, rate int) []byte {
	const header = 44
	b := make([]byte, header+2*len(pcm))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*rate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[header+2*i:], uint16(v))
	}
	return b
}
