package sensors

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: sources stop their
// processes, timers and watchers when Run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// collect runs src until Run returns, copying every emitted value; when
// enough (if set) says so after an emit, it cancels the context. It fails
// the test if Run takes longer than limit.
func collect[T any](t *testing.T, src Source[T], limit time.Duration, cp func(T) T, enough func([]T) bool) ([]T, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []T
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(v T) {
			got = append(got, cp(v))
			if enough != nil && enough(got) {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		return got, err
	case <-time.After(limit):
		cancel()
		select {
		case <-done:
			t.Fatalf("%s: Run did not return within %s", src.Name(), limit)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run did not return within %s, nor 5s after cancellation", src.Name(), limit)
		}
	}
	return nil, nil
}

func copyPCM(p []int16) []int16 { return append([]int16(nil), p...) }

func copyFrame(f *Frame) *Frame {
	c := *f
	c.Data = append([]byte(nil), f.Data...)
	return &c
}

func concat(chunks [][]int16) []int16 {
	var out []int16
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

func totalSamples(n int) func([][]int16) bool {
	return func(c [][]int16) bool {
		s := 0
		for _, x := range c {
			s += len(x)
		}
		return s >= n
	}
}

func count[T any](n int) func([]T) bool { return func(v []T) bool { return len(v) >= n } }

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func needSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
}

// shPrintf is a command printing bytes exactly (octal escapes), then the
// given shell commands.
func shPrintf(b []byte, then string) []string {
	var f strings.Builder
	for _, c := range b {
		f.WriteString("\\")
		f.WriteByte('0' + c>>6)
		f.WriteByte('0' + (c>>3)&7)
		f.WriteByte('0' + c&7)
	}
	script := "printf '" + f.String() + "'"
	if then != "" {
		script += "; " + then
	}
	return []string{"sh", "-c", script}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func boolp(b bool) *bool { return &b }
