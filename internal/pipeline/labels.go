package pipeline

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// Labels are class names by output index.
type Labels []string

// Name is the label of class i, or "" when there is none.
func (l Labels) Name(i int) string {
	if i >= 0 && i < len(l) {
		return l[i]
	}
	return ""
}

// Index is the class index of a label, or -1.
func (l Labels) Index(name string) int {
	for i, s := range l {
		if s == name {
			return i
		}
	}
	return -1
}

// ParseLabels reads a label file: one label per line, the line number
// (from 0) being the class index, as TensorFlow Lite's label files are
// read (the Task library and label_image): a blank line in the middle
// keeps its index with an empty label, blank lines at the end are
// dropped, surrounding spaces and a CR before the newline are trimmed.
// When every non-blank line starts with an index ("3 car", "3: car",
// "3:car"), as Coral's label files do, the indices are taken from the
// lines instead (missing indices get empty labels).
func ParseLabels(r io.Reader, name string) (Labels, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lines []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(lines) == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		lines = append(lines, line)
		if len(lines) > maxLabels {
			return nil, fmt.Errorf("%s: more than %d labels", name, maxLabels)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no labels", name)
	}
	type indexed struct {
		i     int
		label string
	}
	var ix []indexed
	for _, l := range lines {
		if l == "" {
			continue
		}
		i, label, ok := splitIndex(l)
		if !ok {
			ix = nil
			break
		}
		ix = append(ix, indexed{i, label})
	}
	if ix == nil {
		return Labels(lines), nil
	}
	top := 0
	for n, e := range ix {
		if e.i >= maxLabels {
			return nil, fmt.Errorf("%s: label index %d is too large (at most %d)", name, e.i, maxLabels-1)
		}
		for _, prev := range ix[:n] {
			if prev.i == e.i {
				return nil, fmt.Errorf("%s: index %d is given twice (%q and %q)", name, e.i, prev.label, e.label)
			}
		}
		top = max(top, e.i+1)
	}
	labels := make(Labels, top)
	for _, e := range ix {
		labels[e.i] = e.label
	}
	return labels, nil
}

const maxLabels = 1 << 16

// splitIndex splits "12 label", "12: label" or "12:label".
func splitIndex(l string) (int, string, bool) {
	end := 0
	for end < len(l) && l[end] >= '0' && l[end] <= '9' {
		end++
	}
	if end == 0 || end > 6 || end == len(l) {
		return 0, "", false
	}
	rest := l[end:]
	switch {
	case rest[0] == ':':
		rest = rest[1:]
	case unicode.IsSpace(rune(rest[0])):
	default:
		return 0, "", false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return 0, "", false
	}
	i, err := strconv.Atoi(l[:end])
	if err != nil {
		return 0, "", false
	}
	return i, rest, true
}

// LoadLabels reads a label file (see ParseLabels).
func LoadLabels(path string) (Labels, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseLabels(bytes.NewReader(b), path)
}
