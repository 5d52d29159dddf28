package sensors

import (
	"context"
	"time"
)

// pacer releases data in real time: the item ending at offset d from the
// start is released at start+d. A consumer that falls more than
// pacerMaxLag behind moves the start instead of being sent a burst, as a
// live sensor would drop what it could not deliver. A disabled pacer only
// checks ctx.
type pacer struct {
	enabled bool
	start   time.Time
	base    time.Duration // offset corresponding to start
	timer   *time.Timer
}

const pacerMaxLag = time.Second

func newPacer(enabled bool) *pacer { return &pacer{enabled: enabled} }

// wait blocks until offset d is due or ctx is done; offset 0 is the
// time of the first call.
func (p *pacer) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !p.enabled {
		return nil
	}
	now := time.Now()
	if p.start.IsZero() {
		p.start = now // offset 0 is the first call
	}
	due := p.start.Add(d - p.base)
	wait := due.Sub(now)
	if wait <= 0 {
		if -wait > pacerMaxLag {
			p.start, p.base = now, d
		}
		return nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(wait)
	} else {
		p.timer.Reset(wait)
	}
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
