package serve

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/internal/fakeclock"
)

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5555}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 22}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 22}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 22, Zone: "eth0"}, "fe80::/64"},
		{&net.UnixAddr{Name: "@sock", Net: "unix"}, "@sock"},
	} {
		if got := ClientKey(tc.addr); got != tc.want {
			t.Errorf("ClientKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func testLimiter(clock *fakeclock.Clock, sessions, perClient int) *limiter {
	return newLimiter(Config{
		MaxSessions: sessions, MaxSessionsPerClient: perClient,
		ConnRate: rate.Every(time.Second), ConnBurst: 3, Now: clock.Now,
	})
}

func TestLimiterConnRateRefills(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	l := testLimiter(clock, 100, 100)
	for i := range 3 {
		if err := l.admitConn("a"); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	if err := l.admitConn("a"); !errors.Is(err, errRate) {
		t.Fatalf("4th conn in burst: %v, want errRate", err)
	}
	if err := l.admitConn("b"); err != nil {
		t.Fatalf("another client is limited too: %v", err)
	}
	clock.Advance(time.Second)
	if err := l.admitConn("a"); err != nil {
		t.Fatalf("after a second: %v", err)
	}
}

func TestLimiterPerClientBeforeGlobal(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	l := testLimiter(clock, 3, 2)
	l.rate = rate.Inf
	for range 4 { // per-client conn cap is 2*2
		if err := l.admitConn("greedy"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := l.admitSession("greedy"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.admitSession("greedy"); !errors.Is(err, errClientSessions) {
		t.Fatalf("3rd session: %v, want errClientSessions", err)
	}
	if err := l.admitConn("greedy"); !errors.Is(err, errClientConns) {
		t.Fatalf("5th conn: %v, want errClientConns", err)
	}
	// The refusals took no global slot: another client gets the last one.
	if err := l.admitConn("polite"); err != nil {
		t.Fatal(err)
	}
	if err := l.admitSession("polite"); err != nil {
		t.Fatalf("polite client: %v", err)
	}
	if err := l.admitConn("late"); err != nil {
		t.Fatal(err)
	}
	if err := l.admitSession("late"); !errors.Is(err, errSessions) {
		t.Fatalf("4th session overall: %v, want errSessions", err)
	}
	l.releaseSession("polite")
	if err := l.admitSession("late"); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if conns, sessions, _ := l.counts(); conns != 6 || sessions != 3 {
		t.Errorf("counts = %d conns, %d sessions; want 6, 3", conns, sessions)
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	l := testLimiter(clock, 10, 2)
	if err := l.admitConn("holder"); err != nil {
		t.Fatal(err)
	}
	// Many one-off clients, each leaving right away with its bucket not yet
	// refilled: the worst case for the sweep.
	for i := range 10 * l.maxClients {
		c := fmt.Sprint("10.", i)
		if err := l.admitConn(c); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		l.releaseConn(c)
		if n := len(l.clients); n > l.maxClients {
			t.Fatalf("%d clients tracked, cap %d", n, l.maxClients)
		}
	}
	if _, ok := l.clients["holder"]; !ok {
		t.Error("sweep dropped a client that holds a connection")
	}
}

// TestSweepKeepsSessions checks that a session whose connection already
// closed (its program still shutting down) survives a sweep: otherwise
// releaseSession finds nothing and the global session slot is lost for
// good.
func TestSweepKeepsSessions(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	l := testLimiter(clock, 10, 2)
	if err := l.admitConn("leaving"); err != nil {
		t.Fatal(err)
	}
	if err := l.admitSession("leaving"); err != nil {
		t.Fatal(err)
	}
	l.releaseConn("leaving")
	for i := range 2 * l.maxClients { // enough one-off clients to sweep
		c := fmt.Sprint("10.", i)
		if err := l.admitConn(c); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		l.releaseConn(c)
	}
	l.releaseSession("leaving")
	if _, sessions, _ := l.counts(); sessions != 0 {
		t.Errorf("%d sessions counted after the last one ended, want 0", sessions)
	}
}

// TestLimiterIPv6Prefixes: one holder of a /48 has 65,536 /64s. Each /64
// gets a client's caps, but a /56 only four clients' worth and a /48
// sixteen, for each of the connection rate, live connections and sessions;
// another /48 is not touched.
func TestLimiterIPv6Prefixes(t *testing.T) {
	// Keys of distinct /64s: n /64s in one /56, or one /64 in each of n /56s
	// of one /48.
	in56 := func(site, home, n int) []string {
		var keys []string
		for i := range n {
			keys = append(keys, fmt.Sprintf("2001:db8:%x:%x%02x::/64", site, home, i))
		}
		return keys
	}
	in48 := func(site, n int) []string {
		var keys []string
		for home := range n {
			keys = append(keys, in56(site, home, 1)...)
		}
		return keys
	}
	const perClient = 3 // each resource below allows a client 3
	for _, tc := range []struct {
		name  string
		limit func(l *limiter)
		admit func(l *limiter, client string) error
		want  error // what refuses once a cap is reached
	}{
		{"connection rate", func(l *limiter) { l.rate, l.burst = rate.Every(time.Hour), perClient }, (*limiter).admitConn, errRate},
		{"live connections", func(l *limiter) { l.maxClientConns = perClient }, (*limiter).admitConn, errClientConns},
		{"sessions", func(l *limiter) { l.maxClientSessions = perClient }, func(l *limiter, c string) error {
			if err := l.admitConn(c); err != nil {
				return err
			}
			err := l.admitSession(c)
			if err != nil {
				l.releaseConn(c)
			}
			return err
		}, errClientSessions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(Config{
				MaxSessions: 1 << 20, MaxSessionsPerClient: 1 << 20,
				ConnRate: rate.Inf, ConnBurst: 1, Now: fakeclock.New(time.Unix(1e9, 0)).Now,
			})
			tc.limit(l)
			// admitted counts how many attempts from clients are admitted,
			// each client trying perClient+1 times.
			admitted := func(clients []string) int {
				n := 0
				for _, c := range clients {
					for range perClient + 1 {
						err := tc.admit(l, c)
						if err == nil {
							n++
						} else if !errors.Is(err, tc.want) {
							t.Fatalf("%s: %v, want %v", c, err, tc.want)
						}
					}
				}
				return n
			}
			if got := admitted(in56(1, 1, 1)); got != perClient {
				t.Errorf("one /64: %d admitted, want %d", got, perClient)
			}
			if got := admitted(in56(1, 1, 10)[1:]); got != 3*perClient {
				t.Errorf("nine more /64s in the same /56: %d admitted, want %d (the /56's cap of 4 clients)", got, 3*perClient)
			}
			if got := admitted(in48(1, 40)[2:]); got != 12*perClient {
				t.Errorf("one /64 in each of 38 more /56s of the same /48: %d admitted, want %d (the /48's cap of 16 clients)", got, 12*perClient)
			}
			if got := admitted(in48(2, 2)); got != 2*perClient {
				t.Errorf("another /48: %d admitted, want %d", got, 2*perClient)
			}
			if got := admitted([]string{"192.0.2.1", "192.0.2.2"}); got != 2*perClient {
				t.Errorf("IPv4 clients: %d admitted, want %d", got, 2*perClient)
			}
		})
	}
}

// TestLimiterPrefixRelease: releasing gives the slots back at every level,
// and the refusal names the prefix whose cap was reached.
func TestLimiterPrefixRelease(t *testing.T) {
	l := newLimiter(Config{
		MaxSessions: 100, MaxSessionsPerClient: 1,
		ConnRate: rate.Inf, ConnBurst: 1, Now: fakeclock.New(time.Unix(1e9, 0)).Now,
	})
	var held []string
	for i := range 4 { // the /56's cap: 4 sessions
		c := fmt.Sprintf("2001:db8:0:%x::/64", i)
		if err := l.admitConn(c); err != nil {
			t.Fatal(err)
		}
		if err := l.admitSession(c); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		held = append(held, c)
	}
	c := "2001:db8:0:ff::/64"
	if err := l.admitConn(c); err != nil {
		t.Fatal(err)
	}
	err := l.admitSession(c)
	if !errors.Is(err, errClientSessions) || !strings.Contains(err.Error(), "2001:db8::/56") {
		t.Fatalf("fifth session in the /56: %v, want errClientSessions naming the /56", err)
	}
	l.releaseSession(held[0])
	l.releaseConn(held[0])
	if err := l.admitSession(c); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	for _, c := range append(held[1:], c) {
		l.releaseSession(c)
		l.releaseConn(c)
	}
	if conns, sessions, _ := l.counts(); conns != 0 || sessions != 0 {
		t.Errorf("counts after every release: %d conns, %d sessions", conns, sessions)
	}
	for k, c := range l.clients {
		if c.conns != 0 || c.sessions != 0 {
			t.Errorf("%s still holds %d conns, %d sessions", k, c.conns, c.sessions)
		}
	}
}

// dialFrom connects to addr from the loopback address src (all of
// 127.0.0.0/8 is loopback on Linux), so that the server sees a client of
// its own.
func dialFrom(t *testing.T, addr, src string) (*gossh.Client, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTime}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	cc, chans, reqs, err := gossh.NewClientConn(nc, addr, &gossh.ClientConfig{
		User: "anyone", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitTime,
	})
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := gossh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// TestLimitsAcrossSourceAddresses runs real clients from several source
// addresses: a client's limits bind that client alone, the global ones all
// of them together.
func TestLimitsAcrossSourceAddresses(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.MaxSessions, c.MaxSessionsPerClient = 5, 2 })
		open := func(src string) *termSession {
			c, err := dialFrom(t, ts.addr, src)
			if err != nil {
				t.Fatalf("from %s: %v", src, err)
			}
			return openTerm(t, c, 80, 24, nil)
		}
		refused := func(src, line string) {
			t.Helper()
			s := open(src)
			if status := s.wait(t); status != 1 || !strings.Contains(s.out.String(), line) {
				t.Errorf("from %s: exit %d, output %q; want 1 and %q", src, status, s.out.String(), line)
			}
		}
		for _, src := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4"} {
			s := open(src)
			waitFor(t, s.out, "client "+src)
		}
		refused("127.0.0.2", lineClientSessions) // its own cap, though the server has room
		refused("127.0.0.5", lineBusy)           // a new client, but the server is full
		if s := ts.Stats(); s.Sessions != 5 || s.Turned != 2 {
			t.Errorf("stats %+v, want 5 sessions and 2 turned away", s)
		}
	})
	t.Run("connection rate", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.ConnRate, c.ConnBurst = rate.Every(time.Hour), 2 })
		for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"} {
			if _, err := dialFrom(t, ts.addr, src); err != nil {
				t.Fatalf("from %s: %v", src, err)
			}
		}
		for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
			if _, err := dialFrom(t, ts.addr, src); err == nil {
				t.Errorf("from %s: third connection of the burst admitted", src)
			}
		}
		if _, err := dialFrom(t, ts.addr, "127.0.0.4"); err != nil {
			t.Errorf("a client with its burst left was refused: %v", err)
		}
		if s := ts.Stats(); s.Refused != 2 {
			t.Errorf("refused %d, want 2", s.Refused)
		}
	})
	t.Run("connections", func(t *testing.T) {
		// MaxSessions 1 allows 1 + 1/4 + 16 = 17 connections in all, two
		// per client.
		ts := startServer(t, func(c *Config) { c.MaxSessions, c.MaxSessionsPerClient, c.ConnRate = 1, 1, rate.Inf })
		n := 0
		for i := 2; n < 17; i++ {
			src := fmt.Sprintf("127.0.1.%d", i)
			for range 2 {
				if _, err := dialFrom(t, ts.addr, src); err != nil {
					t.Fatalf("from %s (connection %d): %v", src, n+1, err)
				}
				if n++; n == 17 {
					break
				}
			}
			if i == 2 {
				if _, err := dialFrom(t, ts.addr, src); err == nil {
					t.Errorf("from %s: a third connection was admitted", src)
				}
			}
		}
		if _, err := dialFrom(t, ts.addr, "127.0.2.1"); err == nil {
			t.Error("a new client was admitted past the global connection cap")
		}
	})
}
