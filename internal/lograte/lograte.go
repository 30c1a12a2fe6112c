// Package lograte keeps a flood of like events from flooding the operator's
// log. Each kind of line may be written a few times a second; the lines held
// back are then counted, and once the second is over one line says how many
// there were. Nothing runs while nothing is held back: the summary is a
// timer started by the first line held back in a second.
package lograte

import (
	"sync"
	"time"
)

// DefaultPerSecond is how many lines of one kind a Limiter lets through in
// a second when Options.PerSecond is zero: enough to show who is refused,
// few enough that a flood costs the log a handful of lines a second.
const DefaultPerSecond = 5

// window is the span over which PerSecond counts.
const window = time.Second

// Options tune a Limiter. The zero value means the defaults.
type Options struct {
	// PerSecond is how many lines of one kind pass in a second
	// (DefaultPerSecond).
	PerSecond int
	// Now is the clock (time.Now).
	Now func() time.Time
	// AfterFunc runs f after d and returns a function that cancels it, as
	// time.AfterFunc and Timer.Stop do (the default). Tests run f by hand.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Limiter decides which lines of each kind are written. Kinds are a fixed
// set the caller names (a limit, a refusal reason); it keeps one small
// record per kind. It is safe for concurrent use.
type Limiter struct {
	per    int
	now    func() time.Time
	after  func(time.Duration, func()) func() bool
	report func(kind string, suppressed int)

	mu    sync.Mutex
	kinds map[string]*kindState
	done  bool
}

// kindState is one kind's current window.
type kindState struct {
	start      time.Time
	passed     int         // lines let through in this window
	suppressed int         // lines held back and not yet reported
	gen        uint64      // which window a pending report belongs to
	stop       func() bool // cancels the pending report; nil when none
}

// New returns a Limiter that calls report with the number of lines of kind
// it held back, once the window they fell in is over (report usually logs
// one line saying so). report runs on a timer's goroutine or in Allow, never
// with the Limiter's lock held.
func New(opts Options, report func(kind string, suppressed int)) *Limiter {
	l := &Limiter{per: opts.PerSecond, now: opts.Now, after: opts.AfterFunc, report: report,
		kinds: make(map[string]*kindState)}
	if l.per <= 0 {
		l.per = DefaultPerSecond
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.after == nil {
		l.after = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return l
}

// Allow reports whether a line of kind may be written now. When it says no,
// the line is counted for the summary.
func (l *Limiter) Allow(kind string) bool {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		k = &kindState{start: now}
		l.kinds[kind] = k
	}
	var late int // what the window that just ended held back
	if now.Sub(k.start) >= window || now.Before(k.start) {
		late = k.flush()
		k.start, k.passed, k.gen = now, 0, k.gen+1
	}
	ok := k.passed < l.per
	if ok {
		k.passed++
	} else {
		k.suppressed++
		if k.stop == nil && !l.done {
			gen := k.gen
			k.stop = l.after(k.start.Add(window).Sub(now), func() { l.expire(kind, gen) })
		}
	}
	l.mu.Unlock()
	if late > 0 {
		l.report(kind, late)
	}
	return ok
}

// flush takes what k held back and cancels its pending report.
func (k *kindState) flush() int {
	if k.stop != nil {
		k.stop()
		k.stop = nil
	}
	n := k.suppressed
	k.suppressed = 0
	return n
}

// expire reports what kind held back in window gen, unless Allow or Close
// did already.
func (l *Limiter) expire(kind string, gen uint64) {
	l.mu.Lock()
	k := l.kinds[kind]
	n := 0
	if k != nil && k.gen == gen && k.stop != nil {
		k.stop = nil
		n, k.suppressed = k.suppressed, 0
	}
	l.mu.Unlock()
	if n > 0 {
		l.report(kind, n)
	}
}

// Close reports what is held back now and cancels the pending reports, so
// that no timer outlives the log. Allow still limits after Close, but what
// it holds back then is not reported.
func (l *Limiter) Close() {
	type held struct {
		kind string
		n    int
	}
	var out []held
	l.mu.Lock()
	l.done = true
	for kind, k := range l.kinds {
		if n := k.flush(); n > 0 {
			out = append(out, held{kind, n})
		}
	}
	l.mu.Unlock()
	for _, h := range out {
		l.report(h.kind, h.n)
	}
}
