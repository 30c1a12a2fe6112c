package serve

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Reasons a connection or session is refused. The user sees a fixed line
// (the busy line before the handshake, lineBusy or lineClientSessions after
// it); the operator's log gets the error.
var (
	errRate           = errors.New("connection rate limit for client")
	errClientConns    = errors.New("connection cap for client")
	errConns          = errors.New("global connection cap")
	errClientSessions = errors.New("session cap for client")
	errSessions       = errors.New("global session cap")
)

// ClientKey names the client behind addr for limits: the IPv4 address, or the
// /64 prefix of an IPv6 address, since one IPv6 host usually owns a whole /64
// and could otherwise dodge every per-client limit by changing address.
func ClientKey(addr net.Addr) string {
	var ip netip.Addr
	if tcp, ok := addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(tcp.IP)
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return addr.String()
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// limiter admits connections and sessions. Per-client checks come before
// global ones, so one client over its own limit never takes a global slot.
// The client table is bounded: entries that hold nothing are swept when it
// fills up, so many addresses cannot grow memory without bound.
type limiter struct {
	now               func() time.Time
	rate              rate.Limit
	burst             int
	maxConns          int
	maxClientConns    int
	maxSessions       int
	maxClientSessions int
	maxClients        int

	mu       sync.Mutex
	clients  map[string]*clientCount
	conns    int
	sessions int
}

type clientCount struct {
	tokens          *rate.Limiter
	conns, sessions int
}

func newLimiter(cfg Config) *limiter {
	// Connections beyond the session caps are allowed so that a client over a
	// session cap can still be told so in words; the slack is bounded.
	maxConns := cfg.MaxSessions + cfg.MaxSessions/4 + 16
	return &limiter{
		now:               cfg.Now,
		rate:              cfg.ConnRate,
		burst:             cfg.ConnBurst,
		maxConns:          maxConns,
		maxClientConns:    2 * cfg.MaxSessionsPerClient,
		maxSessions:       cfg.MaxSessions,
		maxClientSessions: cfg.MaxSessionsPerClient,
		maxClients:        4*maxConns + 1024,
		clients:           make(map[string]*clientCount),
	}
}

// admitConn charges one connection attempt to client and reserves a
// connection slot, or says why not. A refused attempt still spends a token.
func (l *limiter) admitConn(client string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c := l.clients[client]
	if c == nil {
		if len(l.clients) >= l.maxClients {
			l.sweep(now)
		}
		c = &clientCount{tokens: rate.NewLimiter(l.rate, l.burst)}
		l.clients[client] = c
	}
	switch {
	case !c.tokens.AllowN(now, 1):
		return errRate
	case c.conns >= l.maxClientConns:
		return errClientConns
	case l.conns >= l.maxConns:
		return errConns
	}
	c.conns++
	l.conns++
	return nil
}

func (l *limiter) releaseConn(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[client]; c != nil && c.conns > 0 {
		c.conns--
		l.conns--
	}
}

// admitSession reserves a session slot for client, which must hold a
// connection slot.
func (l *limiter) admitSession(client string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	switch {
	case c == nil || c.sessions >= l.maxClientSessions:
		return errClientSessions
	case l.sessions >= l.maxSessions:
		return errSessions
	}
	c.sessions++
	l.sessions++
	return nil
}

func (l *limiter) releaseSession(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[client]; c != nil && c.sessions > 0 {
		c.sessions--
		l.sessions--
	}
}

// sweep drops clients that hold no connection or session and whose token
// bucket is full again: forgetting them changes nothing. If that is not enough, it
// also drops idle clients that are still refilling, down to 3/4 of the cap
// so sweeps stay rare; they get a fresh bucket, which matters little when so
// many addresses are active that the global caps are what protects the
// server. Clients holding connections or sessions are never dropped (a
// session outlives its connection while its program shuts down, and
// releaseSession must find it); there are at most maxConns of them.
func (l *limiter) sweep(now time.Time) {
	for k, c := range l.clients {
		if c.conns == 0 && c.sessions == 0 && c.tokens.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
	for k, c := range l.clients {
		if len(l.clients) < l.maxClients*3/4 {
			break
		}
		if c.conns == 0 && c.sessions == 0 {
			delete(l.clients, k)
		}
	}
}

// counts returns the connections, sessions and tracked clients.
func (l *limiter) counts() (conns, sessions, clients int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, l.sessions, len(l.clients)
}
