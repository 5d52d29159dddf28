package publish

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type dropRec struct {
	reason      string
	n           int
	first, last uint64
}

type obHarness struct {
	t     *testing.T
	opt   outboxOptions
	logs  *observer.ObservedLogs
	mu    sync.Mutex
	drops []dropRec
	now   time.Time
}

func newHarness(t *testing.T, mod func(*outboxOptions)) *obHarness {
	h := &obHarness{t: t, now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	h.opt = outboxOptions{
		Dir:      t.TempDir(),
		MaxBytes: 1 << 20,
		MaxAge:   time.Hour,
		Log:      zap.New(core),
		Now: func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.now
		},
		OnDrop: func(reason string, n int, first, last uint64) {
			h.drops = append(h.drops, dropRec{reason, n, first, last}) // called with the outbox locked
		},
	}
	if mod != nil {
		mod(&h.opt)
	}
	return h
}

func (h *obHarness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func (h *obHarness) open() *outbox {
	h.t.Helper()
	o, err := openOutbox(h.opt)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { o.close() })
	return o
}

func payloadFor(seq uint64, size int) []byte {
	p := fmt.Appendf(nil, `{"seq":%d,"pad":"`, seq)
	for len(p) < size-2 {
		p = append(p, 'x')
	}
	return append(p, '"', '}')
}

func appendN(t *testing.T, o *outbox, n, size int) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		seq, err := o.append("detection", func(seq uint64, _ time.Time) ([]byte, error) { return payloadFor(seq, size), nil })
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// pending reads every waiting event in order, checking payloads.
func pending(t *testing.T, o *outbox) []uint64 {
	t.Helper()
	var seqs []uint64
	var cur uint64
	for {
		r, ok := o.next(cur)
		if !ok {
			return seqs
		}
		if !bytes.HasPrefix(r.Payload, fmt.Appendf(nil, `{"seq":%d,`, r.Seq)) || r.Topic != "detection" {
			t.Fatalf("seq %d: topic %q payload %.40q", r.Seq, r.Topic, r.Payload)
		}
		seqs = append(seqs, r.Seq)
		cur = r.Seq
	}
}

func seqRange(lo, hi uint64) []uint64 {
	var s []uint64
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

func equalSeqs(t *testing.T, what string, got, want []uint64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, abbreviate(got), abbreviate(want))
	}
}

func abbreviate(s []uint64) string {
	if len(s) <= 12 {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%v ... %v (%d)", s[:5], s[len(s)-5:], len(s))
}

// crash leaves the outbox as kill -9 would: nothing written at close.
func crash(o *outbox) {
	o.mu.Lock()
	o.closeFiles()
	o.mu.Unlock()
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOutboxAppendReadAck(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open()
	equalSeqs(t, "appended", appendN(t, o, 10, 100), seqRange(1, 10))
	equalSeqs(t, "pending", pending(t, o), seqRange(1, 10))
	r, _ := o.next(0)
	if !r.At.Equal(h.now) {
		t.Errorf("enqueue time %v, want %v", r.At, h.now)
	}
	o.ack(4)
	equalSeqs(t, "after ack 4", pending(t, o), seqRange(5, 10))
	if s := o.stats(); s.Events != 6 || s.AckedSeq != 4 || s.NextSeq != 11 || s.Bytes != 6*(recHeaderSize+recFixedSize+int64(len("detection"))+100) {
		t.Errorf("stats %+v", s)
	}
	o.ack(3) // stale
	o.ack(99)
	if s := o.stats(); s.Events != 0 || s.AckedSeq != 10 {
		t.Errorf("after ack all: %+v", s)
	}
}

func TestOutboxSeqAndAckPersistAcrossReopen(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open()
	appendN(t, o, 5, 50)
	o.close()

	o = h.open()
	equalSeqs(t, "unacked after reopen", pending(t, o), seqRange(1, 5))
	equalSeqs(t, "seq continues", appendN(t, o, 2, 50), []uint64{6, 7})
	o.ack(3)
	o.close()

	o = h.open()
	equalSeqs(t, "after ack 3 and reopen", pending(t, o), seqRange(4, 7))
	o.ack(7)
	o.close()

	o = h.open()
	if s := o.stats(); s.Events != 0 || s.NextSeq != 8 {
		t.Fatalf("all acked: %+v", s)
	}
	equalSeqs(t, "seq after everything acked", appendN(t, o, 1, 50), []uint64{8})
}

func TestOutboxSeqSurvivesDeletedSegments(t *testing.T) {
	h := newHarness(t, func(o *outboxOptions) { o.SegmentBytes = 2048 })
	o := h.open()
	appendN(t, o, 100, 200)
	if n := len(segFiles(t, h.opt.Dir)); n < 5 {
		t.Fatalf("%d segments, want rotation", n)
	}
	o.ack(100)
	if err := o.persistAck(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, h.opt.Dir)); n != 1 {
		t.Fatalf("%d segments after everything acked, want 1 (the active one)", n)
	}
	crash(o)
	o = h.open()
	equalSeqs(t, "next seq", appendN(t, o, 1, 200), []uint64{101})
	// Rotation right after full acknowledgement: the new segment is empty
	// and named by the seq it starts at.
	o.ack(101)
	o.persistAck()
	o.close()
	o = h.open()
	equalSeqs(t, "next seq 2", appendN(t, o, 1, 200), []uint64{102})
}

func TestOutboxRotationAndDeletion(t *testing.T) {
	h := newHarness(t, func(o *outboxOptions) { o.SegmentBytes = 4096 })
	o := h.open()
	appendN(t, o, 200, 200)
	files := segFiles(t, h.opt.Dir)
	if len(files) < 10 {
		t.Fatalf("%d segment files, want ≥ 10 with 4 KiB segments", len(files))
	}
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Size() > 4096 {
			t.Errorf("%s: %d bytes, over the segment size", f, fi.Size())
		}
	}
	o.ack(100)
	if n := len(segFiles(t, h.opt.Dir)); n != len(files) {
		t.Fatalf("segments deleted before the acknowledged position was persisted")
	}
	if err := o.persistAck(); err != nil {
		t.Fatal(err)
	}
	left := segFiles(t, h.opt.Dir)
	if len(left) >= len(files) || len(left) == 0 {
		t.Fatalf("%d of %d segments left after acking half", len(left), len(files))
	}
	// The first segment left still holds seq 101.
	first := o.segs[0]
	if first.first > 101 || first.last < 101 {
		t.Fatalf("first segment holds %d..%d, want 101 in it", first.first, first.last)
	}
	equalSeqs(t, "pending", pending(t, o), seqRange(101, 200))
	o.close()
	o = h.open()
	equalSeqs(t, "pending after reopen", pending(t, o), seqRange(101, 200))
}

func TestOutboxTornTailTruncated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string, size int64) error
		keep   int
	}{
		{"truncated record", func(p string, size int64) error { return os.Truncate(p, size-7) }, 9},
		{"truncated header", func(p string, size int64) error {
			return os.Truncate(p, size-int64(recFixedSize+len("detection")+100)-3)
		}, 9},
		{"zeros after the end", func(p string, size int64) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(make([]byte, 4096))
			return err
		}, 10},
		{"flipped byte in the last record", func(p string, size int64) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			b := []byte{0}
			f.ReadAt(b, size-20)
			b[0] ^= 0x40
			_, err = f.WriteAt(b, size-20)
			return err
		}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			o := h.open()
			appendN(t, o, 10, 100)
			crash(o)
			files := segFiles(t, h.opt.Dir)
			fi, _ := os.Stat(files[len(files)-1])
			if err := tc.damage(files[len(files)-1], fi.Size()); err != nil {
				t.Fatal(err)
			}
			o = h.open()
			equalSeqs(t, "recovered", pending(t, o), seqRange(1, uint64(tc.keep)))
			if tc.keep < 10 || tc.name == "zeros after the end" {
				if h.logs.FilterMessageSnippet("torn").Len() != 1 {
					t.Errorf("no log line about the torn tail; logs: %v", h.logs.All())
				}
			}
			equalSeqs(t, "next", appendN(t, o, 1, 100), []uint64{uint64(tc.keep) + 1})
			o.close()
			o = h.open()
			equalSeqs(t, "after reopen", pending(t, o), seqRange(1, uint64(tc.keep)+1))
		})
	}
}

func TestOutboxDamagedSegmentInTheMiddle(t *testing.T) {
	h := newHarness(t, func(o *outboxOptions) { o.SegmentBytes = 1024 })
	o := h.open()
	appendN(t, o, 30, 100)
	crash(o)
	files := segFiles(t, h.opt.Dir)
	if len(files) < 3 {
		t.Fatalf("%d segments", len(files))
	}
	// Damage the first record of the second segment.
	f, err := os.OpenFile(files[1], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, segHeaderSize+recHeaderSize+20)
	f.Close()
	o = h.open()
	got := pending(t, o)
	if len(got) == 0 || got[0] != 1 || got[len(got)-1] != 30 {
		t.Fatalf("pending %v", got)
	}
	var lost uint64
	for _, d := range h.drops {
		if d.reason == DropCorrupt {
			lost += uint64(d.n)
		}
	}
	if lost == 0 || uint64(len(got))+lost != 30 {
		t.Fatalf("%d pending + %d dropped as corrupt, want 30 (drops %v)", len(got), lost, h.drops)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
	if h.logs.FilterMessageSnippet("damaged").Len() == 0 {
		t.Errorf("damage not logged")
	}
	equalSeqs(t, "next", appendN(t, o, 1, 100), []uint64{31})
}

func TestOutboxDropsOldestWhenFull(t *testing.T) {
	h := newHarness(t, func(o *outboxOptions) { o.MaxBytes = 64 << 10; o.SegmentBytes = 8 << 10 })
	o := h.open()
	const n, size = 300, 1000
	start := time.Now()
	seqs := appendN(t, o, n, size)
	if time.Since(start) > 20*time.Second {
		t.Fatalf("appends to a full outbox took %v", time.Since(start))
	}
	equalSeqs(t, "seqs", seqs, seqRange(1, n))
	st := o.stats()
	if st.Bytes > 64<<10 {
		t.Fatalf("outbox holds %d bytes, over MaxBytes", st.Bytes)
	}
	got := pending(t, o)
	if len(got) != st.Events || got[len(got)-1] != n {
		t.Fatalf("pending %s, stats %+v", abbreviate(got), st)
	}
	equalSeqs(t, "pending is the newest", got, seqRange(uint64(n-len(got)+1), n))
	var dropped int
	next := uint64(1)
	for _, d := range h.drops {
		if d.reason != DropFull || d.first != next {
			t.Fatalf("drop %+v, want reason full from seq %d", d, next)
		}
		dropped += d.n
		next = d.last + 1
	}
	if dropped+len(got) != n {
		t.Fatalf("%d dropped + %d pending != %d", dropped, len(got), n)
	}
	// Dropped events never come back, even if acks were not persisted.
	o.persistAck()
	crash(o)
	o = h.open()
	equalSeqs(t, "after reopen", pending(t, o), got)
	// Disk use stays bounded: old segments are deleted.
	var total int64
	for _, f := range segFiles(t, h.opt.Dir) {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	if total > 64<<10+2*(8<<10) {
		t.Fatalf("segments hold %d bytes on disk", total)
	}
	if _, err := o.append("detection", func(uint64, time.Time) ([]byte, error) { return make([]byte, 70<<10), nil }); err == nil {
		t.Fatal("an event larger than MaxBytes was accepted")
	}
}

func TestOutboxDropsOldByAge(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open()
	appendN(t, o, 5, 100)
	h.advance(40 * time.Minute)
	appendN(t, o, 3, 100)
	h.advance(30 * time.Minute) // the first 5 are 70 minutes old
	o.expire()
	equalSeqs(t, "after expiry", pending(t, o), seqRange(6, 8))
	if len(h.drops) != 1 || h.drops[0] != (dropRec{DropAge, 5, 1, 5}) {
		t.Fatalf("drops %v", h.drops)
	}
	// Expiry also applies on reopen and when reading.
	o.close()
	h.advance(31 * time.Minute)
	o = h.open()
	equalSeqs(t, "all expired", pending(t, o), nil)
	if len(h.drops) != 2 || h.drops[1] != (dropRec{DropAge, 3, 6, 8}) {
		t.Fatalf("drops %v", h.drops)
	}
	equalSeqs(t, "seq continues", appendN(t, o, 1, 100), []uint64{9})
}

func TestOutboxCrashResendsUnpersistedAcks(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open()
	appendN(t, o, 10, 100)
	o.ack(4)
	o.persistAck()
	o.ack(10) // not persisted
	crash(o)
	o = h.open()
	equalSeqs(t, "pending", pending(t, o), seqRange(5, 10))
}

func TestOutboxConcurrentAppendsGroupCommit(t *testing.T) {
	for _, window := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			h := newHarness(t, func(o *outboxOptions) { o.SyncInterval = window; o.SegmentBytes = 16 << 10 })
			o := h.open()
			const workers, each = 8, 100
			var wg sync.WaitGroup
			seen := make([][]uint64, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seen[w] = appendN(t, o, each, 120)
				}()
			}
			wg.Wait()
			all := map[uint64]bool{}
			for _, s := range seen {
				for i, q := range s {
					if all[q] || (i > 0 && q <= s[i-1]) {
						t.Fatalf("seq %d repeated or not increasing", q)
					}
					all[q] = true
				}
			}
			crash(o)
			o = h.open()
			equalSeqs(t, "after crash", pending(t, o), seqRange(1, workers*each))
		})
	}
}

func TestOutboxIgnoresStrayFiles(t *testing.T) {
	h := newHarness(t, nil)
	os.WriteFile(filepath.Join(h.opt.Dir, "notes.txt"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(h.opt.Dir, "acked.tmp"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(h.opt.Dir, ackFileName), []byte("garbage"), 0o644)
	o := h.open()
	equalSeqs(t, "fresh", appendN(t, o, 2, 10), []uint64{1, 2})
	if _, err := os.Stat(filepath.Join(h.opt.Dir, "acked.tmp")); err == nil {
		t.Error("temporary file left behind")
	}
	found := false
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message, "acknowledged position unreadable") {
			found = true
		}
	}
	if !found {
		t.Error("damaged ack file not logged")
	}
}

func TestOutboxDirLocked(t *testing.T) {
	h := newHarness(t, nil)
	o := h.open()
	if _, err := openOutbox(h.opt); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
	o.close()
	o2 := h.open() // released by close
	crash(o2)
	h.open() // and by a crash (the kernel drops the lock with the process)
}
