package serve

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

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
