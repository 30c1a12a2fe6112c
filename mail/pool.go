package mail

import (
	"sync"
	"time"
)

// Connection reuse defaults.
const (
	DefaultMaxIdle     = 4
	DefaultIdleTimeout = 10 * time.Second
	// maxPerConn caps messages per connection; some servers (Exchange)
	// refuse more than a few dozen per session.
	maxPerConn = 50
)

// pool keeps authenticated sessions between sends, newest last. A session
// is owned by exactly one send while checked out; any error discards it.
// There is no janitor goroutine: expired sessions are closed when the pool
// is next used, and all of them by close.
type pool struct {
	max     int
	timeout time.Duration

	mu     sync.Mutex
	idle   []*session
	closed bool
}

// get returns the newest live idle session, or nil.
func (p *pool) get() *session {
	if p.max <= 0 {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	// Sessions are pushed in time order, so the expired ones are a prefix.
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
	}
	p.mu.Unlock()
	for _, st := range stale {
		st.close() // the server has likely dropped it already: no QUIT
	}
	return s
}

// put offers a healthy, detached session for reuse and reports whether the
// pool took it; if not, the caller ends it.
func (p *pool) put(s *session) bool {
	if p.max <= 0 || s.sent >= maxPerConn {
		return false
	}
	s.idleSince = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.max {
		return false
	}
	p.idle = append(p.idle, s)
	return true
}

// close ends every idle session and makes put refuse from now on.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	deadline := time.Now().Add(time.Second) // one bound for all the QUITs
	for _, s := range idle {
		_ = s.nc.SetDeadline(deadline)
		s.quit()
	}
}
