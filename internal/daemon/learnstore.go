package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edged/edged/internal/finetune"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/sensors"
)

// learnStore keeps one pipeline's on-device learning in the state
// directory:
//
//	<state_dir>/learn/<pipeline>/examples/<label>/<time>.wav   examples, as recorded or uploaded
//	<state_dir>/learn/<pipeline>/models/<n>/model.tflite       trained versions 1, 2, ...
//	                                        labels.txt, report.json
//	<state_dir>/learn/<pipeline>/active.json                   the version in use and the ones before it
//
// Every file is written to a temporary name, synced and renamed, so a
// crash leaves either the old file or the new one.
type learnStore struct {
	dir string
}

func newLearnStore(stateDir, pipelineName string) learnStore {
	return learnStore{dir: filepath.Join(stateDir, "learn", pipelineName)}
}

// activeRecord is active.json.
type activeRecord struct {
	// Version in use; 0 is the configured model.
	Version int `json:"version"`
	// Previous versions, oldest first: rollback returns to the last one.
	Previous []int `json:"previous,omitempty"`
	// BaseSHA256 is the configured model the versions were trained from;
	// when the configuration names another model they no longer apply.
	BaseSHA256 string `json:"base_sha256"`
	Changed    string `json:"changed"`
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func checkLabel(label string) error {
	if !labelRE.MatchString(label) {
		return fmt.Errorf("label %q: want 1-64 letters, digits, '_' or '-', starting with a letter or digit", label)
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o640)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (s learnStore) examplesDir() string { return filepath.Join(s.dir, "examples") }

// addExample stores a clip of 16-bit PCM as examples/<label>/<time>.wav.
func (s learnStore) addExample(label string, pcm []int16, rate int, at time.Time) (string, error) {
	if err := checkLabel(label); err != nil {
		return "", err
	}
	name := at.UTC().Format("20060102T150405.000000000Z") + ".wav"
	path := filepath.Join(s.examplesDir(), label, name)
	if err := writeFileAtomic(path, sensors.EncodeWAV(pcm, rate)); err != nil {
		return "", fmt.Errorf("storing the example: %w", err)
	}
	return filepath.Join(label, name), nil
}

// counts returns the number of examples per label.
func (s learnStore) counts() (map[string]int, error) {
	out := map[string]int{}
	labels, err := os.ReadDir(s.examplesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range labels {
		if !l.IsDir() || checkLabel(l.Name()) != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.examplesDir(), l.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".wav") && !strings.HasPrefix(f.Name(), ".") {
				out[l.Name()]++
			}
		}
	}
	return out, nil
}

// clips reads every example at rate Hz.
func (s learnStore) clips(rate int) ([]finetune.Clip, error) {
	counts, err := s.counts()
	if err != nil {
		return nil, err
	}
	labels := make([]string, 0, len(counts))
	for l := range counts {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	var out []finetune.Clip
	for _, l := range labels {
		files, err := os.ReadDir(filepath.Join(s.examplesDir(), l))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".wav") || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			path := filepath.Join(s.examplesDir(), l, f.Name())
			pcm, _, err := sensors.ReadWAVFile(path, rate)
			if err != nil {
				return nil, fmt.Errorf("example %s: %w", path, err)
			}
			out = append(out, finetune.Clip{Name: filepath.Join(l, f.Name()), Label: l, PCM: pcm})
		}
	}
	return out, nil
}

// clear removes the examples of label, or all of them when label is empty,
// and returns how many went.
func (s learnStore) clear(label string) (int, error) {
	counts, err := s.counts()
	if err != nil {
		return 0, err
	}
	if label == "" {
		n := 0
		for _, c := range counts {
			n += c
		}
		return n, os.RemoveAll(s.examplesDir())
	}
	if err := checkLabel(label); err != nil {
		return 0, err
	}
	return counts[label], os.RemoveAll(filepath.Join(s.examplesDir(), label))
}

func (s learnStore) activePath() string { return filepath.Join(s.dir, "active.json") }

// active reads active.json; without one, version 0 is active.
func (s learnStore) active() (activeRecord, error) {
	b, err := os.ReadFile(s.activePath())
	if errors.Is(err, fs.ErrNotExist) {
		return activeRecord{}, nil
	}
	if err != nil {
		return activeRecord{}, err
	}
	var a activeRecord
	if err := json.Unmarshal(b, &a); err != nil {
		return activeRecord{}, fmt.Errorf("%s: %w", s.activePath(), err)
	}
	if a.Version < 0 {
		return activeRecord{}, fmt.Errorf("%s: version %d", s.activePath(), a.Version)
	}
	return a, nil
}

func (s learnStore) setActive(a activeRecord) error {
	a.Changed = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.activePath(), append(b, '\n'))
}

func (s learnStore) versionDir(n int) string {
	return filepath.Join(s.dir, "models", strconv.Itoa(n))
}

// versions lists the stored versions in ascending order.
func (s learnStore) versions() ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "models"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 && e.IsDir() {
			if _, err := os.Stat(filepath.Join(s.versionDir(n), "model.tflite")); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// saveVersion stores a trained model as the next version. The model file
// goes last, so a version without it (a crash midway) is not listed.
func (s learnStore) saveVersion(res *finetune.Result) (int, error) {
	vs, err := s.versions()
	if err != nil {
		return 0, err
	}
	n := 1
	if len(vs) > 0 {
		n = vs[len(vs)-1] + 1
	}
	dir := s.versionDir(n)
	report, err := json.MarshalIndent(res.Report, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "labels.txt"), []byte(strings.Join(res.Labels, "\n")+"\n")); err != nil {
		return 0, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "report.json"), append(report, '\n')); err != nil {
		return 0, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "model.tflite"), res.Model); err != nil {
		return 0, err
	}
	return n, nil
}

// loadVersion reads a stored version's model and labels.
func (s learnStore) loadVersion(n int) ([]byte, pipeline.Labels, error) {
	dir := s.versionDir(n)
	model, err := os.ReadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		return nil, nil, fmt.Errorf("learned version %d: %w", n, err)
	}
	labels, err := pipeline.LoadLabels(filepath.Join(dir, "labels.txt"))
	if err != nil {
		return nil, nil, fmt.Errorf("learned version %d: %w", n, err)
	}
	return model, labels, nil
}
