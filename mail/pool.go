package mail

import (
	"slices"
	"sync"
	"time"
)

// Connection reuse defaults. The pool keeps only connections that
// concurrent sends opened, and an idle one closes itself after
// DefaultIdleTimeout, so a quiet sender holds none; 16 lets a busy SSH demo
// reuse a connection for most codes (4 made 32 concurrent logins open a new
// STARTTLS session for most of them).
const (
	DefaultMaxIdle     = 16
	DefaultIdleTimeout = 5 * time.Second
	// maxPerConn caps messages per connection; some servers (Exchange)
	// refuse more than a few dozen per session.
	maxPerConn = 50
	// quitTimeout bounds the goodbye on a connection the pool lets go.
	quitTimeout = time.Second
)

// pool keeps authenticated sessions between sends, newest last. A session
// is owned by exactly one send while checked out; any error discards it.
//
// Each idle session has a timer that ends it once it has been idle for
// timeout, so that after the last send nothing stays open (and no goroutine,
// ours or the server's, stays alive) until the server gives up on it. There
// is no janitor goroutine: a stopped or pending timer holds none, and one
// that fires runs only the goodbye. Whoever removes a session from idle,
// under mu, owns it; a timer that finds its session gone does nothing.
type pool struct {
	max     int
	timeout time.Duration

	mu       sync.Mutex
	idle     []*session
	closed   bool
	expiring sync.WaitGroup // goodbyes started by timers, for close to wait on
}

// get returns the newest live idle session, or nil.
func (p *pool) get() *session {
	if p.max <= 0 {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	// Sessions are pushed in time order, so the expired ones are a prefix.
	// Their timers are due but may not have run yet.
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= p.timeout {
		n++
	}
	stale := append([]*session(nil), p.idle[:n]...)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	var s *session
	if len(p.idle) > 0 {
		s = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		s.expiry.Stop()
	}
	p.mu.Unlock()
	for _, st := range stale {
		st.expiry.Stop()
		st.close() // the server may have dropped it already: no QUIT
	}
	return s
}

// put offers a healthy, detached session for reuse and reports whether the
// pool took it; if not, the caller ends it.
func (p *pool) put(s *session) bool {
	if p.max <= 0 || s.sent >= maxPerConn {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.max {
		return false
	}
	s.idleSince = time.Now()
	p.idle = append(p.idle, s)
	// stays tells a late callback of an earlier stay from this one's.
	s.stays++
	stay := s.stays
	s.expiry = time.AfterFunc(p.timeout, func() { p.expire(s, stay) })
	return true
}

// expire ends s if it is still in the pool for the stay whose timer fired.
func (p *pool) expire(s *session, stay int) {
	p.mu.Lock()
	i := slices.Index(p.idle, s)
	if i < 0 || s.stays != stay {
		p.mu.Unlock()
		return
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	p.expiring.Add(1) // before close can see the pool closed: see close
	p.mu.Unlock()
	defer p.expiring.Done()
	_ = s.nc.SetDeadline(time.Now().Add(quitTimeout))
	s.quit()
}

// close ends every idle session, waits for goodbyes timers have started,
// and makes put refuse from now on.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	// No expire adds to expiring from here on: it finds idle empty.
	deadline := time.Now().Add(quitTimeout) // one bound for all the QUITs
	for _, s := range idle {
		s.expiry.Stop()
		_ = s.nc.SetDeadline(deadline)
		s.quit()
	}
	p.expiring.Wait()
}
