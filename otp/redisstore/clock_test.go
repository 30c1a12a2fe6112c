package redisstore

import (
	"testing"
	"time"
)

// TestServerClock: the deadline written in Redis's clock is never later
// than the caller's, whatever the offset between the clocks, and follows
// Redis's clock when it jumps.
func TestServerClock(t *testing.T) {
	// Times are in microseconds, the unit of the deadline scripts get.
	const us = time.Microsecond
	const hour = time.Hour / us
	ma := maxAge / us
	// A sample is a round trip from local t0 to t1 in which Redis read
	// redis.
	type sample struct{ t0, t1, redis time.Duration }
	tests := []struct {
		name    string
		samples []sample
		off     time.Duration // the true offset, Redis minus local, after the samples
		at      time.Duration // local time of the deadline
		// the estimate may be low by at most slack (an early refusal)
		slack time.Duration
	}{
		{"redis ahead by a day", []sample{{10, 20, 24*hour + 15}}, 24 * hour, 100, 10},
		{"redis behind by an hour", []sample{{10, 20, -hour + 12}}, -hour, 100, 10},
		{"the tightest sample wins", []sample{{10, 90, 50}, {100, 102, 101}}, 0, 200, 2},
		{"a wider sample does not loosen it", []sample{{100, 102, 101}, {110, 190, 150}}, 0, 200, 2},
		{"redis stepped back 1 h", []sample{{100, 102, 101}, {200, 204, 202 - hour}}, -hour, 300, 4},
		{"redis stepped forward 1 h", []sample{{100, 102, 101}, {200, 204, 202 + hour}}, hour, 300, 4},
		{"an old estimate gives way to a looser one", []sample{{100, 101, 100}, {100 + ma, 150 + ma, 125 + ma}}, 0, 200 + ma, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServerClock()
			for _, s := range tt.samples {
				c.sample(s.t0*us, s.t1*us, s.redis*us)
			}
			got := time.Duration(c.toRedis(tt.at*us)) * time.Microsecond
			caller := (tt.at + tt.off) * us // the caller's deadline in Redis's clock
			if got > caller {
				t.Errorf("deadline %v in Redis's clock is after the caller's %v: a late script would run", got, caller)
			}
			if got < caller-tt.slack*us {
				t.Errorf("deadline %v is more than %v before the caller's %v", got, tt.slack*us, caller)
			}
		})
	}
}

func TestServerClockFresh(t *testing.T) {
	c := newServerClock()
	if c.fresh(c.now()) {
		t.Fatal("fresh before any sample")
	}
	c.sample(5, 7, 6)
	if !c.fresh(7+maxAge) || c.fresh(8+maxAge) {
		t.Errorf("fresh for maxAge after the sample: got %v at +maxAge, %v after", c.fresh(7+maxAge), c.fresh(8+maxAge))
	}
}
