package publish

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The outbox is an append-only log of events in segment files, see the
// package documentation for the format. One mutex guards the in-memory
// index; appends write under it and then wait, without it, for a group
// fsync that covers them.

const (
	segMagic      = "EDGEDOB1"
	segHeaderSize = 16 // magic, first seq (uint64 LE)
	recHeaderSize = 8  // body length (uint32 LE), CRC-32C of the body (uint32 LE)
	recFixedSize  = 18 // seq (uint64), enqueue time (int64 Unix ns), topic length (uint16)
	maxRecordBody = 1 << 20
	segSuffix     = ".seg"
	ackFileName   = "acked"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Drop reasons, as used in the dropped-events metric.
const (
	DropFull    = "full"    // MaxBytes reached: the oldest events made room
	DropAge     = "age"     // older than MaxAge
	DropCorrupt = "corrupt" // unreadable on disk (CRC mismatch not at the tail)
)

// ErrClosed is returned by operations on a closed Client.
var ErrClosed = errors.New("publish: closed")

type outboxOptions struct {
	Dir          string
	MaxBytes     int64
	MaxAge       time.Duration
	SyncInterval time.Duration
	SegmentBytes int64 // default MaxBytes/16 within [64 KiB, 4 MiB]
	Log          *zap.Logger
	Now          func() time.Time
	// OnDrop is told about every dropped run of events (called with the
	// outbox locked: it must not call back into it).
	OnDrop func(reason string, n int, first, last uint64)
}

type obRecord struct {
	Seq     uint64
	At      time.Time // when it was appended
	Topic   string    // below the topic prefix
	Payload []byte
}

type segment struct {
	first uint64 // first seq this segment holds (its name)
	last  uint64 // last seq written; first-1 when empty
	path  string
	f     *os.File
	size  int64 // valid bytes, header included
}

type obEntry struct {
	seq uint64
	seg *segment
	off int64 // frame offset in seg
	n   int64 // frame size
	at  int64 // Unix ns of the append
}

type outbox struct {
	opt outboxOptions
	log *zap.Logger

	mu   sync.Mutex
	cond sync.Cond // signalled when a sync completes

	segs      []*segment // by first seq; the last one takes appends
	q         []obEntry  // waiting events in seq order, from qHead
	qHead     int
	bytes     int64  // sum of q[qHead:].n
	nextSeq   uint64 // the seq the next append gets
	acked     uint64 // every seq <= acked is acknowledged or dropped
	persisted uint64 // acked as last written to the ack file
	synced    uint64 // every seq <= synced is on disk
	buf       []byte

	writeSeq uint64 // last seq written (maybe not yet synced)
	syncing  bool
	dirty    []*segment // written since the last sync
	dirDirty bool       // a segment file was created since the last sync
	failed   error      // a failed fsync or write: the outbox takes no more appends

	notify chan struct{} // cap 1: events became sendable
	closed bool
	lock   *os.File // flock on Dir/lock

	persistMu sync.Mutex // one ack-file writer at a time
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// openOutbox opens (creating if needed) the outbox in opt.Dir, recovering
// from a crash: torn tails are truncated, acknowledged events skipped.
func openOutbox(opt outboxOptions) (*outbox, error) {
	if opt.Dir == "" {
		return nil, errors.New("outbox: no directory")
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultOutboxMaxBytes
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = DefaultOutboxMaxAge
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = min(max(opt.MaxBytes/16, 64<<10), 4<<20)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.OnDrop == nil {
		opt.OnDrop = func(string, int, uint64, uint64) {}
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &outbox{opt: opt, log: opt.Log.With(zap.String("outbox", opt.Dir)), notify: make(chan struct{}, 1)}
	o.cond.L = &o.mu
	lock, err := lockDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	o.lock = lock
	if err := o.recover(); err != nil {
		o.closeFiles()
		return nil, err
	}
	return o, nil
}

func (o *outbox) recover() error {
	acked, err := readAckFile(filepath.Join(o.opt.Dir, ackFileName))
	if err != nil {
		o.log.Warn("outbox: acknowledged position unreadable; resending every event on disk (subscribers may see duplicates)", zap.Error(err))
	}
	o.acked, o.persisted = acked, acked
	ents, err := os.ReadDir(o.opt.Dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	var firsts []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(o.opt.Dir, name))
			continue
		}
		if !strings.HasSuffix(name, segSuffix) || !e.Type().IsRegular() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 {
			o.log.Warn("outbox: ignoring a file that is not a segment", zap.String("file", name))
			continue
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	expect := uint64(0) // next seq expected from the segments so far
	for i, first := range firsts {
		isLast := i == len(firsts)-1
		seg, err := o.loadSegment(first, isLast, expect)
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		o.segs = append(o.segs, seg)
		expect = seg.last + 1
	}
	o.nextSeq = max(expect, o.acked+1, 1)
	if n := len(o.segs); n > 0 {
		o.nextSeq = max(o.nextSeq, o.segs[n-1].first)
	}
	o.writeSeq = o.nextSeq - 1
	o.synced = o.writeSeq
	// Acknowledged events no longer in any segment cannot be waiting.
	if n := len(o.segs); n == 0 || o.segs[n-1].last < o.nextSeq-1 {
		if err := o.newSegment(o.nextSeq); err != nil {
			return err
		}
		if err := o.syncDir(); err != nil {
			return err
		}
	}
	o.dirty, o.dirDirty = nil, false
	o.deleteAckedSegments()
	o.enforceBounds(0)
	o.log.Info("outbox: opened", zap.Int("events", len(o.q)-o.qHead), zap.Int64("bytes", o.bytes),
		zap.Uint64("next_seq", o.nextSeq), zap.Uint64("acked_seq", o.acked), zap.Int("segments", len(o.segs)))
	return nil
}

// loadSegment reads one segment file, indexes its waiting events and cuts
// it at the first damaged record. It returns nil for a file to skip.
func (o *outbox) loadSegment(first uint64, isLast bool, expect uint64) (*segment, error) {
	path := filepath.Join(o.opt.Dir, segName(first))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if expect != 0 && first != expect {
		if first < expect {
			o.log.Error("outbox: segment overlaps the previous one; ignoring it", zap.String("file", path))
			return nil, nil
		}
		if lo := max(expect, o.acked+1); lo < first {
			o.log.Error("outbox: events missing between segments (damaged disk?)", zap.Uint64("first_missing", lo), zap.Uint64("last_missing", first-1))
			o.opt.OnDrop(DropCorrupt, int(first-lo), lo, first-1)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	seg := &segment{first: first, last: first - 1, path: path, f: f}
	if len(data) < segHeaderSize || string(data[:8]) != segMagic || binary.LittleEndian.Uint64(data[8:16]) != first {
		if !isLast && len(data) >= segHeaderSize {
			o.log.Error("outbox: segment header damaged; ignoring the segment", zap.String("file", path))
			f.Close()
			return nil, nil
		}
		// A segment created just before a crash: write its header anew.
		if err := o.writeHeader(seg); err != nil {
			f.Close()
			return nil, err
		}
		if len(data) > 0 {
			o.log.Warn("outbox: torn segment header rewritten", zap.String("file", path))
		}
		return seg, nil
	}
	off := int64(segHeaderSize)
	seq := first
	for off < int64(len(data)) {
		body, n, ok := parseFrame(data[off:])
		if ok {
			rs := binary.LittleEndian.Uint64(body[0:8])
			if rs != seq {
				ok = false
			}
		}
		if !ok {
			break
		}
		if seq > o.acked {
			at := int64(binary.LittleEndian.Uint64(body[8:16]))
			o.q = append(o.q, obEntry{seq: seq, seg: seg, off: off, n: n, at: at})
			o.bytes += n
		}
		seg.last = seq
		seq++
		off += n
	}
	seg.size = off
	if off < int64(len(data)) {
		lost := int64(len(data)) - off
		if isLast {
			o.log.Warn("outbox: torn or damaged tail truncated (an append interrupted by a crash)",
				zap.String("file", path), zap.Int64("offset", off), zap.Int64("bytes_discarded", lost))
		} else {
			o.log.Error("outbox: damaged record in a segment; the rest of the segment is lost",
				zap.String("file", path), zap.Int64("offset", off), zap.Int64("bytes_discarded", lost))
		}
		if err := f.Truncate(off); err != nil {
			f.Close()
			return nil, fmt.Errorf("outbox: truncating %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	return seg, nil
}

// parseFrame checks one frame at the start of b: its body, its size, and
// whether it is whole and intact.
func parseFrame(b []byte) (body []byte, n int64, ok bool) {
	if len(b) < recHeaderSize {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(b[0:4])
	if l < recFixedSize || l > maxRecordBody || int64(len(b)-recHeaderSize) < int64(l) {
		return nil, 0, false
	}
	body = b[recHeaderSize : recHeaderSize+int(l)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, false
	}
	if tl := int(binary.LittleEndian.Uint16(body[16:18])); recFixedSize+tl > len(body) {
		return nil, 0, false
	}
	return body, int64(recHeaderSize) + int64(l), true
}

func decodeBody(body []byte) obRecord {
	tl := int(binary.LittleEndian.Uint16(body[16:18]))
	return obRecord{
		Seq:     binary.LittleEndian.Uint64(body[0:8]),
		At:      time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:16]))),
		Topic:   string(body[recFixedSize : recFixedSize+tl]),
		Payload: slices.Clone(body[recFixedSize+tl:]),
	}
}

func (o *outbox) writeHeader(seg *segment) error {
	var h [segHeaderSize]byte
	copy(h[:8], segMagic)
	binary.LittleEndian.PutUint64(h[8:], seg.first)
	if err := seg.f.Truncate(0); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if _, err := seg.f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	seg.size = segHeaderSize
	return nil
}

// newSegment creates the segment that takes appends from seq first on.
// Its directory entry is made durable by the next sync.
func (o *outbox) newSegment(first uint64) error {
	path := filepath.Join(o.opt.Dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	seg := &segment{first: first, last: first - 1, path: path, f: f}
	var h [segHeaderSize]byte
	copy(h[:8], segMagic)
	binary.LittleEndian.PutUint64(h[8:], first)
	if _, err := f.Write(h[:]); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("outbox: %w", err)
	}
	seg.size = segHeaderSize
	o.segs = append(o.segs, seg)
	o.dirty = append(o.dirty, seg)
	o.dirDirty = true
	return nil
}

func (o *outbox) syncDir() error {
	d, err := os.Open(o.opt.Dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing %s: %w", o.opt.Dir, err)
	}
	return nil
}

// append writes one event and returns once it is on disk (fsync'd). build
// renders the payload for the seq the event gets. When the event does not
// fit in MaxBytes the oldest waiting events are dropped; append never waits
// for the broker.
func (o *outbox) append(topic string, build func(seq uint64, now time.Time) ([]byte, error)) (uint64, error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0, ErrClosed
	}
	if o.failed != nil {
		err := o.failed
		o.mu.Unlock()
		return 0, err
	}
	now := o.opt.Now()
	seq := o.nextSeq
	payload, err := build(seq, now)
	if err != nil {
		o.mu.Unlock()
		return 0, err
	}
	bodyLen := recFixedSize + len(topic) + len(payload)
	n := int64(recHeaderSize + bodyLen)
	if len(topic) > 0xffff || bodyLen > maxRecordBody || n > o.opt.MaxBytes {
		o.mu.Unlock()
		return 0, fmt.Errorf("publish: event of %d bytes is larger than the outbox allows (%d)", bodyLen, min(int64(maxRecordBody), o.opt.MaxBytes))
	}
	o.enforceBounds(n)
	seg := o.segs[len(o.segs)-1]
	if seg.last >= seg.first && seg.size+n > o.opt.SegmentBytes {
		if err := o.newSegment(seq); err != nil {
			o.mu.Unlock()
			return 0, err
		}
		seg = o.segs[len(o.segs)-1]
	}
	o.buf = slices.Grow(o.buf[:0], int(n))[:n]
	b := o.buf
	binary.LittleEndian.PutUint32(b[0:4], uint32(bodyLen))
	body := b[recHeaderSize:]
	binary.LittleEndian.PutUint64(body[0:8], seq)
	binary.LittleEndian.PutUint64(body[8:16], uint64(now.UnixNano()))
	binary.LittleEndian.PutUint16(body[16:18], uint16(len(topic)))
	copy(body[recFixedSize:], topic)
	copy(body[recFixedSize+len(topic):], payload)
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(body, castagnoli))
	if _, err := seg.f.WriteAt(b, seg.size); err != nil {
		// Leave no partial frame behind; if even that fails, stop taking
		// appends (the next start truncates the torn tail).
		if terr := seg.f.Truncate(seg.size); terr != nil {
			o.failed = fmt.Errorf("outbox: write failed and could not be undone: %v", err)
		}
		o.mu.Unlock()
		return 0, fmt.Errorf("outbox: appending to %s: %w", seg.path, err)
	}
	o.q = append(o.q, obEntry{seq: seq, seg: seg, off: seg.size, n: n, at: now.UnixNano()})
	o.bytes += n
	seg.size += n
	seg.last = seq
	o.nextSeq = seq + 1
	o.writeSeq = seq
	if len(o.dirty) == 0 || o.dirty[len(o.dirty)-1] != seg {
		o.dirty = append(o.dirty, seg)
	}
	err = o.waitSyncedLocked(seq)
	o.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// waitSyncedLocked returns when every seq <= seq is on disk. The first
// waiter that finds no sync running runs one (group commit): it covers
// every append made before it starts, so one fsync serves all the
// appenders that arrived while the previous one ran.
func (o *outbox) waitSyncedLocked(seq uint64) error {
	for o.synced < seq {
		if o.failed != nil {
			return o.failed
		}
		if o.syncing {
			o.cond.Wait()
			continue
		}
		o.syncing = true
		if d := o.opt.SyncInterval; d > 0 {
			o.mu.Unlock()
			time.Sleep(d)
			o.mu.Lock()
		}
		target, files, dir := o.writeSeq, o.dirty, o.dirDirty
		o.dirty, o.dirDirty = nil, false
		o.mu.Unlock()
		var err error
		for _, s := range files {
			if e := s.f.Sync(); e != nil && err == nil {
				err = fmt.Errorf("outbox: fsync %s: %w", s.path, e)
			}
		}
		if dir && err == nil {
			err = o.syncDir()
		}
		o.mu.Lock()
		o.syncing = false
		if err != nil {
			// After a failed fsync the page cache cannot be trusted to
			// reach the disk: refuse further appends rather than claim
			// durability (the next start recovers what is there).
			o.failed = err
			o.log.Error("outbox: fsync failed; no more events are accepted until restart", zap.Error(err))
		} else if target > o.synced {
			o.synced = target
			select {
			case o.notify <- struct{}{}:
			default:
			}
		}
		o.cond.Broadcast()
	}
	return nil
}

// enforceBounds drops waiting events older than MaxAge, then the oldest
// events until extra more bytes fit in MaxBytes.
func (o *outbox) enforceBounds(extra int64) {
	limit := o.opt.Now().Add(-o.opt.MaxAge).UnixNano()
	n := 0
	for o.qHead+n < len(o.q) && o.q[o.qHead+n].at < limit {
		n++
	}
	o.dropHead(n, DropAge)
	n = 0
	for b := o.bytes; o.qHead+n < len(o.q) && b+extra > o.opt.MaxBytes; n++ {
		b -= o.q[o.qHead+n].n
	}
	o.dropHead(n, DropFull)
}

func (o *outbox) dropHead(n int, reason string) {
	if n == 0 {
		return
	}
	first, last := o.q[o.qHead].seq, o.q[o.qHead+n-1].seq
	o.popHead(n)
	o.acked = max(o.acked, last)
	o.opt.OnDrop(reason, n, first, last)
}

func (o *outbox) popHead(n int) {
	for i := o.qHead; i < o.qHead+n; i++ {
		o.bytes -= o.q[i].n
		o.q[i] = obEntry{}
	}
	o.qHead += n
	if o.qHead == len(o.q) {
		o.q, o.qHead = o.q[:0], 0
	} else if o.qHead > 1024 && o.qHead > len(o.q)/2 {
		k := copy(o.q, o.q[o.qHead:])
		clear(o.q[k:])
		o.q, o.qHead = o.q[:k], 0
	}
}

// expire drops events older than MaxAge.
func (o *outbox) expire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.enforceBounds(0)
	}
}

// next returns the first durable waiting event with a seq above after.
func (o *outbox) next(after uint64) (obRecord, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		if o.closed {
			return obRecord{}, false
		}
		o.enforceBounds(0)
		live := o.q[o.qHead:]
		i := sort.Search(len(live), func(i int) bool { return live[i].seq > after })
		if i == len(live) || live[i].seq > o.synced {
			return obRecord{}, false
		}
		e := live[i]
		frame := make([]byte, e.n)
		_, err := e.seg.f.ReadAt(frame, e.off)
		body, _, ok := parseFrame(frame)
		if err == nil && ok && binary.LittleEndian.Uint64(body[0:8]) == e.seq {
			return decodeBody(body), true
		}
		// The file changed under us (a damaged disk): lose this event
		// and everything before it rather than stall.
		o.log.Error("outbox: a waiting event cannot be read back; dropping it", zap.Uint64("seq", e.seq), zap.String("file", e.seg.path), zap.Error(err))
		o.dropHead(i+1, DropCorrupt)
	}
}

// ack marks every event up to seq as delivered.
func (o *outbox) ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq <= o.acked || o.closed {
		return
	}
	seq = min(seq, o.nextSeq-1)
	live := o.q[o.qHead:]
	n := sort.Search(len(live), func(i int) bool { return live[i].seq > seq })
	o.popHead(n)
	o.acked = seq
}

// ackedSeq returns the acknowledged (or dropped) position.
func (o *outbox) ackedSeq() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked
}

type outboxStats struct {
	Events   int
	Bytes    int64
	NextSeq  uint64
	AckedSeq uint64
	Segments int
}

func (o *outbox) stats() outboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return outboxStats{Events: len(o.q) - o.qHead, Bytes: o.bytes, NextSeq: o.nextSeq, AckedSeq: o.acked, Segments: len(o.segs)}
}

// persistAck writes the acknowledged position if it moved, then deletes the
// segments it covers. The daemon calls it about once a second, so an ack
// costs no fsync of its own; after a crash the events acknowledged since
// the last write are sent again (duplicates, never gaps).
func (o *outbox) persistAck() error {
	o.persistMu.Lock()
	defer o.persistMu.Unlock()
	o.mu.Lock()
	a, p := o.acked, o.persisted
	o.mu.Unlock()
	if a == p {
		return nil
	}
	if err := writeAckFile(o.opt.Dir, a); err != nil {
		return err
	}
	o.mu.Lock()
	o.persisted = max(o.persisted, a)
	o.deleteAckedSegments()
	o.mu.Unlock()
	return nil
}

// deleteAckedSegments removes segments (never the one taking appends) whose
// every event is at or below the persisted acknowledged position.
func (o *outbox) deleteAckedSegments() {
	if o.syncing { // a sync may be using the files; the next call deletes them
		return
	}
	for len(o.segs) > 1 && o.segs[0].last <= o.persisted && !slices.Contains(o.dirty, o.segs[0]) {
		s := o.segs[0]
		s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			o.log.Warn("outbox: removing an acknowledged segment", zap.Error(err))
		}
		o.segs = o.segs[1:]
	}
}

// The ack file: "EDGEDAK1", acked seq (uint64 LE)... kept to 16 bytes plus
// a CRC so a torn write is detected.
func writeAckFile(dir string, acked uint64) error {
	var b [20]byte
	copy(b[:8], "EDGEDAK1")
	binary.LittleEndian.PutUint64(b[8:16], acked)
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	tmp := filepath.Join(dir, ackFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackFileName))
	}
	if err != nil {
		return fmt.Errorf("outbox: writing the acknowledged position: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

func readAckFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 20 || string(b[:8]) != "EDGEDAK1" || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, fmt.Errorf("%s is damaged", path)
	}
	return binary.LittleEndian.Uint64(b[8:16]), nil
}

// close makes every written event durable, persists the acknowledged
// position and closes the files. Appends waiting for a sync finish first;
// later ones get ErrClosed.
func (o *outbox) close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	err := o.waitSyncedLocked(o.writeSeq)
	o.mu.Unlock()
	if perr := o.persistAck(); err == nil {
		err = perr
	}
	o.mu.Lock()
	o.closeFiles()
	o.mu.Unlock()
	return err
}

// closeFiles closes every segment without writing anything (tests use it
// to leave the outbox as a kill -9 would).
func (o *outbox) closeFiles() {
	for _, s := range o.segs {
		s.f.Close()
	}
	o.segs = nil
	o.closed = true
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}
