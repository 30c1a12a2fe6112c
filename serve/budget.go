package serve

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// byteBudget is a number of bytes per second shared by every connection
// (a token bucket holding one second's worth).
type byteBudget struct {
	now     func() time.Time
	lim     *rate.Limiter
	chunk   int          // the most one call may take: the bucket's size, at most maxChunk
	waits   atomic.Int64 // calls to take that had to wait
	refused atomic.Int64 // calls to tryTake that were refused
}

// maxChunk bounds one read while a budget is in force, so that one reader
// cannot book a long stretch of the budget at once and others get their turn
// between its reads.
const maxChunk = 16 << 10

func newByteBudget(perSecond int64, now func() time.Time) *byteBudget {
	burst := int(min(perSecond, 1<<30))
	return &byteBudget{now: now, lim: rate.NewLimiter(rate.Limit(perSecond), burst), chunk: min(burst, maxChunk)}
}

// take charges n bytes (at most chunk), first waiting until the budget has
// them or ctx is done. Readers wait in turn, each for the bytes it read
// last, so every connection moves on at a share of the budget.
func (b *byteBudget) take(ctx context.Context, n int) {
	r := b.lim.ReserveN(b.now(), n)
	d := r.DelayFrom(b.now())
	if d <= 0 {
		return
	}
	b.waits.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// tryTake charges n bytes (at most chunk) if the budget has them now.
func (b *byteBudget) tryTake(n int) bool {
	if b.lim.AllowN(b.now(), n) {
		return true
	}
	b.refused.Add(1)
	return false
}
