package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otplogin/otplogin/otp"
)

// A Check is one thing /readyz asks about: a name for the operator and a
// function that says whether it works now. It is given a context with a
// deadline.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// StoreCheck is the readiness of store: whether it answers its Ping (a
// store outside the process, such as Redis, has one). A store without one
// (memory) is always ready, and ok is false: there is nothing to check.
func StoreCheck(store otp.Store) (c Check, ok bool) {
	p, ok := store.(interface{ Ping(context.Context) error })
	if !ok {
		return Check{}, false
	}
	return Check{Name: "store", Check: p.Ping}, true
}

// relayProbeEvery is how often MailCheck probes a relay that failed, at
// most: a balancer asking /readyz every second must not make the server
// open a connection to the relay every second.
const relayProbeEvery = 10 * time.Second

// relayState is what the last send said about the relay, and the last
// probe after a failure.
type relayState struct {
	down atomic.Bool // the last send could not use the relay

	mu       sync.Mutex // one probe at a time; guards the fields below
	probedAt time.Time
	probeErr error
}

// reached records a send's verdict on the relay. It writes only when the
// verdict changes: every send reads it, and a write would make each of
// them take the cache line from the others.
func (r *relayState) reached(ok bool) {
	if r.down.Load() == ok {
		r.down.Store(!ok)
	}
}

// MailCheck is the readiness of the mail relay: ready while the last send
// reached it (or none was tried yet), so that a healthy relay is never
// probed. After a send that could not use the relay (no connection, TLS or
// login failed), ping is tried, at most every ten seconds, and the relay is
// ready again once ping works (or a send does): readiness that waited for
// a send would never come back, since an unready server gets no users.
func (m *Metrics) MailCheck(ping func(context.Context) error) Check {
	return Check{Name: "mail", Check: func(ctx context.Context) error {
		r := &m.relay
		if !r.down.Load() {
			return nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.down.Load() {
			return nil // a send or another probe found it back
		}
		// Only a failed probe is remembered: a relay that comes back and
		// fails again is probed at once.
		if now := m.now(); r.probedAt.IsZero() || now.Sub(r.probedAt) >= relayProbeEvery || now.Before(r.probedAt) {
			if err := ping(ctx); err != nil {
				r.probedAt, r.probeErr = now, err
			} else {
				r.probedAt, r.probeErr = time.Time{}, nil
				r.down.Store(false)
			}
		}
		return r.probeErr
	}}
}
