package sensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/testenv"
)

// wavBytes encodes frames (channel-interleaved values in [-1, 1]) as a WAV
// file of the given layout.
func wavBytes(rate, channels, bits int, float, extensible bool, samples []float64) []byte {
	var data bytes.Buffer
	for _, v := range samples {
		switch {
		case float && bits == 32:
			binary.Write(&data, binary.LittleEndian, float32(v))
		case float:
			binary.Write(&data, binary.LittleEndian, v)
		case bits == 8:
			data.WriteByte(byte(int(math.Round(v*127)) + 128))
		case bits == 16:
			binary.Write(&data, binary.LittleEndian, int16(math.Round(v*32767)))
		case bits == 24:
			x := int32(math.Round(v * 8388607))
			data.Write([]byte{byte(x), byte(x >> 8), byte(x >> 16)})
		case bits == 32:
			binary.Write(&data, binary.LittleEndian, int32(math.Round(v*2147483647)))
		}
	}
	tag := uint16(1)
	if float {
		tag = 3
	}
	var fmtChunk bytes.Buffer
	fmtTag := tag
	if extensible {
		fmtTag = 0xFFFE
	}
	binary.Write(&fmtChunk, binary.LittleEndian, fmtTag)
	binary.Write(&fmtChunk, binary.LittleEndian, uint16(channels))
	binary.Write(&fmtChunk, binary.LittleEndian, uint32(rate))
	binary.Write(&fmtChunk, binary.LittleEndian, uint32(rate*channels*bits/8))
	binary.Write(&fmtChunk, binary.LittleEndian, uint16(channels*bits/8))
	binary.Write(&fmtChunk, binary.LittleEndian, uint16(bits))
	if extensible {
		binary.Write(&fmtChunk, binary.LittleEndian, uint16(22))
		binary.Write(&fmtChunk, binary.LittleEndian, uint16(bits))
		binary.Write(&fmtChunk, binary.LittleEndian, uint32(0))
		binary.Write(&fmtChunk, binary.LittleEndian, tag)
		fmtChunk.Write([]byte{0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71})
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	binary.Write(&out, binary.LittleEndian, uint32(4+8+fmtChunk.Len()+8+3+1+8+data.Len()))
	out.WriteString("WAVE")
	out.WriteString("fmt ")
	binary.Write(&out, binary.LittleEndian, uint32(fmtChunk.Len()))
	out.Write(fmtChunk.Bytes())
	out.WriteString("LIST") // an odd-sized chunk to skip, with its pad byte
	binary.Write(&out, binary.LittleEndian, uint32(3))
	out.Write([]byte{'a', 'b', 'c', 0})
	out.WriteString("data")
	binary.Write(&out, binary.LittleEndian, uint32(data.Len()))
	out.Write(data.Bytes())
	return out.Bytes()
}

func decodeAll(t *testing.T, b []byte) ([]float32, WAVFormat) {
	t.Helper()
	w, err := NewWAVReader(bytes.NewReader(b), "test.wav")
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	buf := make([]float32, 7) // odd chunk size on purpose
	for {
		n, err := w.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, w.Format
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWAVFormats(t *testing.T) {
	src := []float64{0, 0.5, -0.5, 0.25, -1, 0.999}
	for _, c := range []struct {
		bits       int
		float, ext bool
		tol        float64
	}{
		{8, false, false, 1.0 / 100}, {16, false, false, 1e-4}, {24, false, false, 1e-6}, {32, false, false, 1e-7},
		{32, true, false, 1e-7}, {64, true, false, 1e-7}, {16, false, true, 1e-4}, {32, true, true, 1e-7},
	} {
		got, f := decodeAll(t, wavBytes(22050, 1, c.bits, c.float, c.ext, src))
		if f.SampleRate != 22050 || f.Channels != 1 || f.BitsPerSample != c.bits || f.Float != c.float || f.Frames != int64(len(src)) {
			t.Errorf("%d-bit float=%v ext=%v: format %+v", c.bits, c.float, c.ext, f)
		}
		if len(got) != len(src) {
			t.Fatalf("%d-bit: %d samples, want %d", c.bits, len(got), len(src))
		}
		for i := range src {
			if math.Abs(float64(got[i])-src[i]) > c.tol {
				t.Errorf("%d-bit float=%v sample %d = %g, want %g", c.bits, c.float, i, got[i], src[i])
			}
		}
	}
}

func TestWAVStereoDownmix(t *testing.T) {
	got, f := decodeAll(t, wavBytes(48000, 2, 16, false, false, []float64{0.5, 0.25, -0.5, 0.5, 1, -1}))
	if f.Channels != 2 || len(got) != 3 {
		t.Fatalf("format %+v, %d frames", f, len(got))
	}
	for i, want := range []float64{0.375, 0, 0} {
		if math.Abs(float64(got[i])-want) > 1e-4 {
			t.Errorf("frame %d = %g, want %g", i, got[i], want)
		}
	}
}

func TestWAVErrors(t *testing.T) {
	good := wavBytes(16000, 1, 16, false, false, []float64{0.1, 0.2})
	alaw := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(alaw[20:], 6)
	twelve := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(twelve[34:], 12)
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"empty":      {nil, "not a RIFF WAVE file"},
		"mp3":        {[]byte("ID3\x03\x00\x00\x00\x00\x00\x00\x00\x00"), "not a RIFF WAVE file"},
		"a-law":      {alaw, "A-law"},
		"12-bit":     {twelve, "12-bit PCM is not supported"},
		"no data":    {good[:36], "no \"data\" chunk"},
		"no fmt":     {[]byte("RIFF\x04\x00\x00\x00WAVE"), "no \"fmt \" chunk"},
		"huge chunk": {append(append([]byte(nil), good[:12]...), []byte("JUNK\xff\xff\xff\x7f")...), "runs past the end"},
		"rf64":       {append([]byte("RF64"), good[4:]...), "RF64"},
	}
	for name, c := range cases {
		_, err := NewWAVReader(bytes.NewReader(c.b), "x.wav")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if _, err := NewWAVReader(bytes.NewReader(nil), "x.wav"); !errors.Is(err, ErrNotWAV) {
		t.Errorf("empty: %v is not ErrNotWAV", err)
	}
}

func TestWAVTruncatedDataAndStreamedHeader(t *testing.T) {
	b := wavBytes(16000, 1, 16, false, false, []float64{0.1, 0.2, 0.3, 0.4})
	got, _ := decodeAll(t, b[:len(b)-3]) // cut mid-sample: whole samples survive
	if len(got) != 2 {
		t.Errorf("truncated: %d samples, want 2", len(got))
	}
	streamed := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(streamed[len(streamed)-8-4:], 0xFFFFFFFF) // data size unknown
	got, f := decodeAll(t, streamed)
	if len(got) != 4 || f.Frames != -1 {
		t.Errorf("streamed header: %d samples, frames %d", len(got), f.Frames)
	}
}

func TestReadWAVFileSharedRecording(t *testing.T) {
	p := testenv.SharedFile(t, filepath.Join("inputs", "yes_1000ms.wav"))
	samples, f, err := ReadWAVFile(p, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if f.SampleRate != 16000 || f.Channels != 1 || f.BitsPerSample != 16 || len(samples) != 16000 {
		t.Fatalf("format %v, %d samples", f, len(samples))
	}
	// 16-bit mono at the model rate passes through sample for sample.
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data := raw[len(raw)-32000:]
	for i, s := range samples {
		if want := int16(binary.LittleEndian.Uint16(data[2*i:])); s != want {
			t.Fatalf("sample %d = %d, file has %d", i, s, want)
		}
	}
}

func TestReadWAVFileResamples(t *testing.T) {
	dir := t.TempDir()
	n := 44100
	src := make([]float64, n)
	for i := range src {
		src[i] = 0.5 * math.Sin(2*math.Pi*440*float64(i)/44100)
	}
	p := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(p, wavBytes(44100, 1, 16, false, false, src), 0o644); err != nil {
		t.Fatal(err)
	}
	samples, _, err := ReadWAVFile(p, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 16000 {
		t.Fatalf("%d samples after resampling 1 s, want 16000", len(samples))
	}
	f := make([]float32, len(samples))
	for i, s := range samples {
		f[i] = float32(s) / 32768
	}
	if a := toneAmplitude(f[2000:14000], 440, 16000); math.Abs(a-0.5) > 0.01 {
		t.Errorf("440 Hz amplitude after resampling %g, want 0.5", a)
	}
}

func TestEncodeWAVRoundTrip(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
	got, format, err := DecodeWAV(bytes.NewReader(EncodeWAV(pcm, 16000)), "clip.wav", 16000)
	if err != nil {
		t.Fatal(err)
	}
	if format.SampleRate != 16000 || format.Channels != 1 || !slices.Equal(got, pcm) {
		t.Fatalf("round trip: %v %v, want %v", format, got, pcm)
	}
}
