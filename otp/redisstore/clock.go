package redisstore

import (
	"sync"
	"time"
)

// serverClock tracks how Redis's clock reads relative to this process's
// monotonic clock, so that a call's deadline can be written in Redis's own
// time and checked by the script against TIME.
//
// Each sample is a round trip: this process reads its clock at t0, Redis
// reads TIME at some instant inside the trip, this process reads again at
// t1. So the offset (Redis time minus local time) is at least TIME - t1,
// whatever the two wall clocks say; the largest such lower bound is kept.
// A deadline translated with a lower bound lands no later, in Redis's time,
// than the caller's own: a script that runs after the caller gave up always
// sees its deadline passed. Being low only makes a script refuse up to one
// round trip early.
//
// A lower bound stays true while both clocks tick at the same rate and
// Redis's does not jump back. So a sample that contradicts the estimate
// (its upper bound, TIME - t0, is below the bound kept: Redis's clock went
// back, or another server answers after a failover) replaces it, and an
// estimate older than maxAge is refreshed before it is used, which bounds
// what drift between the two clocks can add.
type serverClock struct {
	origin time.Time // local readings are monotonic durations since origin

	mu     sync.Mutex
	offset time.Duration // lower bound of Redis time (since the Unix epoch) minus local time
	at     time.Duration // local time of the sample offset came from; 0: none yet
}

// maxAge is how long an estimate is used without a new sample; calls made
// in the meantime bring samples for free.
const maxAge = 10 * time.Second

func newServerClock() *serverClock { return &serverClock{origin: time.Now()} }

// now is the local monotonic time.
func (c *serverClock) now() time.Duration { return time.Since(c.origin) }

// sample records that Redis read redis (since the Unix epoch) between local
// times t0 and t1.
func (c *serverClock) sample(t0, t1, redis time.Duration) {
	lo, hi := redis-t1, redis-t0
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at == 0 || lo > c.offset || hi < c.offset || t1-c.at > maxAge {
		c.offset, c.at = lo, max(t1, 1)
	}
}

// fresh reports whether the estimate may be used at local time now.
func (c *serverClock) fresh(now time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at != 0 && now-c.at <= maxAge
}

// toRedis is local time t in Redis's clock, in microseconds since the Unix
// epoch (below 2^53 until the year 2255, so exact in a Lua number).
func (c *serverClock) toRedis(t time.Duration) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (t + c.offset).Microseconds()
}
