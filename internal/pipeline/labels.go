package pipeline

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadLabels reads a label file: one label per line, in output order, blank
// lines skipped. When every line starts with its index ("0 person",
// "1: bicycle"), counting up from 0 or 1, the indices are stripped; a file
// where only some lines look indexed is read as plain labels.
func ReadLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if text != "" {
			lines = append(lines, text)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("labels %s: no labels", path)
	}
	return stripIndices(lines), nil
}

func stripIndices(lines []string) []string {
	out := make([]string, len(lines))
	first := -1
	for i, l := range lines {
		idx, rest, ok := splitIndex(l)
		if !ok {
			return lines
		}
		if first < 0 {
			first = idx
		}
		if (first != 0 && first != 1) || idx != first+i {
			return lines
		}
		out[i] = rest
	}
	return out
}

// splitIndex splits "12 label" or "12: label" into 12 and "label".
func splitIndex(s string) (int, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) {
		return 0, "", false
	}
	rest := s[i:]
	if rest[0] != ' ' && rest[0] != '\t' && rest[0] != ':' {
		return 0, "", false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, "", false
	}
	rest = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
	if rest == "" {
		return 0, "", false
	}
	return n, rest, true
}
