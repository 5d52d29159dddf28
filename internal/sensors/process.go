package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// process is a command whose stdout a source reads: started in its own
// process group (so a shell pipeline's children are stopped with it),
// stderr kept (its tail) for the error, stdout read with deadlines so a
// command that stops producing is noticed.
type process struct {
	argv    []string
	cmd     *exec.Cmd
	out     *os.File // read end of stdout
	stderr  tailBuffer
	done    chan struct{} // closed when the command has exited (cmd.Wait returned)
	waitErr error
	read    int64 // bytes read from stdout
	stopAF  func() bool
}

const (
	// stopGrace is how long a command gets between SIGTERM and SIGKILL.
	stopGrace = 2 * time.Second
	// drainGrace is how long a command that has closed its stdout (or
	// exited) gets before it (and any child still holding the pipe) is
	// killed.
	drainGrace = time.Second
	stderrTail = 2048
)

// commandString quotes argv for messages: arecord -q -t raw "a b".
func commandString(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;") {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// startProcess starts argv with stdout on a pipe. When ctx is done, reads
// from the pipe return at once (with ctx.Err() from readFull).
func startProcess(ctx context.Context, argv []string) (*process, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	p := &process{argv: argv, done: make(chan struct{})}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", commandString(argv), err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = w
	cmd.Stderr = &p.stderr
	cmd.WaitDelay = drainGrace // stderr held open by an orphaned child
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("command %s: %w", commandString(argv), err)
	}
	w.Close()
	p.cmd, p.out = cmd, r
	go func() {
		// When the command exits, whatever it left behind in its process
		// group (a shell's background children, still holding our pipes)
		// goes too, before the command is reaped.
		if awaitExit(cmd) {
			signalGroup(cmd, true)
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	// Wake a blocked read when ctx is done.
	p.stopAF = context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })
	return p, nil
}

// readFull reads exactly len(buf) bytes, waiting at most timeout for them.
// It returns the number of bytes read and, when short, why: ctx.Err(), an
// error saying the command stalled, or io.EOF / io.ErrUnexpectedEOF when
// the command closed its output.
func (p *process) readFull(ctx context.Context, buf []byte, timeout time.Duration) (int, error) {
	p.out.SetReadDeadline(time.Now().Add(timeout))
	// Checked after setting the deadline: a cancellation from now on sets
	// it to the past; one before is seen here.
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(p.out, buf)
	p.read += int64(n)
	if err != nil {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, fmt.Errorf("command %s produced no output for %s (stalled?)%s", commandString(p.argv), timeout, p.stderrNote())
		}
	}
	return n, err
}

// stop ends the command (SIGTERM to its process group, SIGKILL after
// stopGrace; the rest of the group is killed when the command has
// exited), waits for it and releases the pipe. It may be called more than
// once.
func (p *process) stop() {
	select {
	case <-p.done:
	default:
		signalGroup(p.cmd, false)
		t := time.NewTimer(stopGrace)
		select {
		case <-p.done:
		case <-t.C:
			signalGroup(p.cmd, true)
			<-p.done
		}
		t.Stop()
	}
	if p.stopAF != nil {
		p.stopAF()
	}
	p.out.Close()
}

// ended is the error for a command whose output ended (readErr: io.EOF or
// io.ErrUnexpectedEOF from readFull, or a read error) after trailing bytes
// of an incomplete chunk or frame (0 if none). It waits briefly for the
// command to exit, stops it, and names the command, its exit status and
// its stderr.
func (p *process) ended(readErr error, what string, trailing int) error {
	t := time.NewTimer(drainGrace)
	exited := true
	select {
	case <-p.done:
	case <-t.C:
		exited = false
	}
	t.Stop()
	p.stop()
	var b strings.Builder
	fmt.Fprintf(&b, "command %s ", commandString(p.argv))
	switch {
	case !exited:
		b.WriteString("closed its output but kept running (stopped now)")
	case p.waitErr == nil:
		b.WriteString("exited with status 0")
	default:
		var ee *exec.ExitError
		if errors.As(p.waitErr, &ee) {
			fmt.Fprintf(&b, "exited (%s)", ee.ProcessState)
		} else {
			fmt.Fprintf(&b, "failed: %v", p.waitErr)
		}
	}
	fmt.Fprintf(&b, " after %d bytes of output", p.read)
	if trailing > 0 {
		fmt.Fprintf(&b, "; the last %d bytes, an incomplete %s, were dropped", trailing, what)
	}
	if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, io.ErrUnexpectedEOF) {
		fmt.Fprintf(&b, "; reading: %v", readErr)
	}
	b.WriteString(p.stderrNote())
	return errors.New(b.String())
}

func (p *process) stderrNote() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	trunc bool
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.trunc = true
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.trunc {
		return "..." + string(t.buf)
	}
	return string(t.buf)
}
