package lograte

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/fakeclock"
)

// timers stands in for time.AfterFunc under a fake clock: the test fires
// what is due by hand.
type timers struct {
	mu      sync.Mutex
	clock   *fakeclock.Clock
	pending []*timer
}

type timer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (ts *timers) after(d time.Duration, f func()) func() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := &timer{at: ts.clock.Now().Add(d), f: f}
	ts.pending = append(ts.pending, t)
	return func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// fire runs the timers that are due and not stopped.
func (ts *timers) fire() {
	ts.mu.Lock()
	var due []*timer
	ts.pending = slices.DeleteFunc(ts.pending, func(t *timer) bool {
		if t.stopped || t.at.After(ts.clock.Now()) {
			return t.stopped
		}
		t.stopped = true
		due = append(due, t)
		return true
	})
	ts.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func (ts *timers) live() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, t := range ts.pending {
		if !t.stopped {
			n++
		}
	}
	return n
}

type reports struct {
	mu  sync.Mutex
	got []string
}

func (r *reports) add(kind string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, kind+":"+itoa(n))
}

func (r *reports) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLimiter(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	ts := &timers{clock: clock}
	var r reports
	l := New(Options{PerSecond: 3, Now: clock.Now, AfterFunc: ts.after}, r.add)

	allowed := func(kind string, n int) int {
		ok := 0
		for range n {
			if l.Allow(kind) {
				ok++
			}
		}
		return ok
	}

	// A flood: three lines pass, the rest are counted; another kind has
	// its own allowance.
	if got := allowed("rate", 100); got != 3 {
		t.Fatalf("%d lines passed in the first second, want 3", got)
	}
	if got := allowed("cap", 2); got != 2 {
		t.Fatalf("another kind: %d passed, want 2", got)
	}
	if ts.live() != 1 {
		t.Fatalf("%d timers pending, want one for the kind that held lines back", ts.live())
	}
	if got := r.take(); len(got) != 0 {
		t.Fatalf("reported %v before the second was over", got)
	}

	// The second ends: one summary, then a fresh allowance.
	clock.Advance(time.Second)
	ts.fire()
	if got := r.take(); !slices.Equal(got, []string{"rate:97"}) {
		t.Fatalf("reports %v, want rate:97", got)
	}
	if got := allowed("rate", 5); got != 3 {
		t.Fatalf("%d lines passed in the next second, want 3", got)
	}

	// A window that rolls over in Allow before its timer fired reports
	// there, once.
	clock.Advance(1500 * time.Millisecond)
	if !l.Allow("rate") {
		t.Fatal("the first line of a new second was held back")
	}
	if got := r.take(); !slices.Equal(got, []string{"rate:2"}) {
		t.Fatalf("reports %v, want rate:2", got)
	}
	ts.fire()
	if got := r.take(); len(got) != 0 || ts.live() != 0 {
		t.Fatalf("the stopped timer reported %v; %d timers pending", got, ts.live())
	}

	// Quiet: nothing pending, nothing reported.
	clock.Advance(time.Hour)
	ts.fire()
	if got := r.take(); len(got) != 0 {
		t.Fatalf("reported %v while quiet", got)
	}

	// Close reports what is held back and leaves no timer.
	allowed("cap", 10)
	l.Close()
	if got := r.take(); !slices.Equal(got, []string{"cap:7"}) {
		t.Fatalf("Close reported %v, want cap:7", got)
	}
	if ts.live() != 0 {
		t.Fatalf("%d timers pending after Close", ts.live())
	}
	allowed("cap", 10)
	if ts.live() != 0 {
		t.Fatal("a timer was started after Close")
	}
}

// TestLimiterRealTimer checks the default timer: the summary comes by
// itself after the second.
func TestLimiterRealTimer(t *testing.T) {
	got := make(chan int, 1)
	l := New(Options{PerSecond: 1}, func(_ string, n int) { got <- n })
	defer l.Close()
	l.Allow("x")
	l.Allow("x")
	l.Allow("x")
	select {
	case n := <-got:
		if n != 2 {
			t.Fatalf("reported %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no summary")
	}
}
