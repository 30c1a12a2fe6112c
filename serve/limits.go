package serve

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/otp"
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
// and could otherwise dodge every per-client limit by changing address. The
// limits here also count the /56 and /48 around a /64 (see clientKeys).
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

// IPv6 prefixes are counted nested: a site is commonly given a /48 and a
// home a /56, so one holder of a /48 has 65,536 /64s, each a client of its
// own. Each wider prefix has its own caps, prefixFactor times a client's
// (connection rate and burst, live connections, sessions), so a /48 gets at
// most 16 clients' worth however many /64s it uses, and one /64 can use up
// at most a quarter of its /56's.
var prefixes = [...]struct {
	bits   int
	factor int
}{{64, 1}, {56, 4}, {48, 16}}

// limiter admits connections and sessions. Per-client checks come before
// global ones, so one client over its own limit never takes a global slot;
// a client's wider IPv6 prefixes count as clients too (see prefixes). The
// client table is bounded: entries that hold nothing are swept when it fills
// up, so many addresses cannot grow memory without bound.
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

// clientCount is what one client or prefix holds.
type clientCount struct {
	tokens          *rate.Limiter
	conns, sessions int
	factor          int // its caps are factor times a client's
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
		// Each connection holds up to three entries (client, /56, /48).
		maxClients: 8*maxConns + 1024,
		clients:    make(map[string]*clientCount),
	}
}

// limitErr names the prefix whose cap refused, when it is not the client's
// own.
func limitErr(err error, level int, key string) error {
	if level == 0 {
		return err
	}
	return &prefixError{err: err, prefix: key}
}

// prefixError is a refusal by the cap of an IPv6 prefix around the client.
type prefixError struct {
	err    error
	prefix string
}

func (e *prefixError) Error() string { return e.err.Error() + ": prefix " + e.prefix }
func (e *prefixError) Unwrap() error { return e.err }

// prefixOf is the log's prefix= for a refusal by a prefix's cap, else
// nothing.
func prefixOf(err error) []any {
	var pe *prefixError
	if errors.As(err, &pe) {
		return []any{"prefix", pe.prefix}
	}
	return nil
}

// admitConn charges one connection attempt to client and its prefixes and
// reserves a connection slot, or says why not. A refused attempt still
// spends a token, of the client and of each prefix up to the one that
// refused.
func (l *limiter) admitConn(client string) error {
	keys := otp.ClientKeys(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.clients)+len(keys) > l.maxClients {
		l.sweep(now) // before any lookup, so that it drops none of ours
	}
	var held [len(prefixes)]*clientCount
	counts := held[:len(keys)]
	for i, k := range keys {
		counts[i] = l.entry(i, k)
	}
	for i, c := range counts {
		if !c.tokens.AllowN(now, 1) {
			return limitErr(errRate, i, keys[i])
		}
	}
	for i, c := range counts {
		if c.conns >= l.maxClientConns*c.factor {
			return limitErr(errClientConns, i, keys[i])
		}
	}
	if l.conns >= l.maxConns {
		return errConns
	}
	for _, c := range counts {
		c.conns++
	}
	l.conns++
	return nil
}

// entry is the count of key, the i-th of a client's keys, made if
// missing. The caller holds l.mu.
func (l *limiter) entry(i int, key string) *clientCount {
	c := l.clients[key]
	if c == nil {
		f := prefixes[i].factor
		c = &clientCount{tokens: rate.NewLimiter(l.rate*rate.Limit(f), l.burst*f), factor: f}
		l.clients[key] = c
	}
	return c
}

func (l *limiter) releaseConn(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release(client, func(c *clientCount) *int { return &c.conns }) {
		l.conns--
	}
}

// release takes one off the count field picks out, for client and its
// prefixes, and reports whether client held one. Entries that hold a count
// are never swept, so all of them are found.
func (l *limiter) release(client string, field func(*clientCount) *int) bool {
	held := false
	for i, k := range otp.ClientKeys(client) {
		if c := l.clients[k]; c != nil && *field(c) > 0 {
			*field(c)--
			held = held || i == 0
		}
	}
	return held
}

// admitSession reserves a session slot for client. A Server's client holds
// a connection slot, and with it its entries; behind Gate, sessions are all
// the limiter counts, and an entry is made for a client it does not know.
func (l *limiter) admitSession(client string) error {
	keys := otp.ClientKeys(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.clients)+len(keys) > l.maxClients {
		l.sweep(l.now()) // before any lookup, so that it drops none of ours
	}
	var held [len(prefixes)]*clientCount
	counts := held[:len(keys)]
	for i, k := range keys {
		c := l.entry(i, k)
		if c.sessions >= l.maxClientSessions*c.factor {
			return limitErr(errClientSessions, i, k)
		}
		counts[i] = c
	}
	if l.sessions >= l.maxSessions {
		return errSessions
	}
	for _, c := range counts {
		c.sessions++
	}
	l.sessions++
	return nil
}

func (l *limiter) releaseSession(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release(client, func(c *clientCount) *int { return &c.sessions }) {
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
		if c.conns == 0 && c.sessions == 0 && c.tokens.TokensAt(now) >= float64(l.burst*c.factor) {
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
