package serve

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/pires/go-proxyproto"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"
)

func TestConfigValidation(t *testing.T) {
	model := func(Session) tea.Model { return testModel{} }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no model", Config{}, "NewModel is required"},
		{"negative cap", Config{NewModel: model, MaxSessions: -1}, "must not be negative"},
		{"negative rate", Config{NewModel: model, ConnRate: -1}, "must not be negative"},
		{"negative timeout", Config{NewModel: model, IdleTimeout: -time.Second}, "timeouts"},
		{"negative input", Config{NewModel: model, MaxInputBytes: -1}, "input bounds"},
		{"negative pre-shell", Config{NewModel: model, MaxPreShellBytes: -1}, "input bounds"},
		{"negative env", Config{NewModel: model, MaxEnvRequests: -1}, "input bounds"},
		{"negative read rate", Config{NewModel: model, ReadRate: -1}, "input bounds"},
		{"negative input rate", Config{NewModel: model, InputRate: -1}, "input bounds"},
		{"negative allowance", Config{NewModel: model, InputAllowance: -1}, "input bounds"},
		{"fps", Config{NewModel: model, FPS: 500}, "FPS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.HostKeyPath = t.TempDir() + "/host_key"
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestRefusedConnectionIsTold(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.ConnRate, c.ConnBurst = rate.Every(time.Hour), 1 })
	dial(t, ts.addr) // spends the burst
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(waitTime))
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	if want := "busy: too many connections, try again in a minute\r\n"; string(got) != want {
		t.Errorf("refused connection read %q, want %q", got, want)
	}
}

// A bubbletea program installs its own SIGINT handler unless told not to;
// over SSH that would quit every session at once when the operator stops
// the server, skipping the grace period.
func TestProcessSignalsDoNotReachSessions(t *testing.T) {
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, syscall.SIGINT) // keeps the test process alive
	defer signal.Stop(caught)
	ts := startServer(t, nil)
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-caught:
	case <-time.After(waitTime):
		t.Fatal("SIGINT not delivered")
	}
	sess.typeText(t, "still here\r")
	ts.waitEvent(t, "typed still here")
	if status := sess.wait(t); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
}

func TestDebugHandler(t *testing.T) {
	ts := startServer(t, nil)
	openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	rec := httptest.NewRecorder()
	ts.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/stats", nil))
	var s Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if s.Sessions != 1 || s.Conns != 1 || s.SessionsTotal != 1 || s.Goroutines == 0 {
		t.Errorf("stats %+v, want one session", s)
	}
	if _, err := os.Stat("/proc/self/statm"); err == nil && s.RSSBytes == 0 {
		t.Error("no RSS although /proc/self/statm exists")
	}
	rec = httptest.NewRecorder()
	ts.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/debug/pprof/cmdline", nil))
	if strings.Contains(rec.Body.String(), os.Args[0]) {
		t.Error("the debug endpoint shows the command line, which may hold secrets")
	}
}

func TestServeDebugLoopbackOnly(t *testing.T) {
	ts := startServer(t, nil)
	for _, addr := range []string{"0.0.0.0:0", ":0", "localhost:0", "192.0.2.1:0", "nonsense"} {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		err := ts.ServeDebug(ctx, addr)
		cancel()
		if err == nil {
			t.Errorf("ServeDebug(%q) served", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ts.ServeDebug(ctx, "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ServeDebug on loopback: %v", err)
		}
	case <-time.After(waitTime):
		t.Fatal("ServeDebug did not return after cancel")
	}
}

func TestProxyProtocol(t *testing.T) {
	client := &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 5555}
	// handshake speaks SSH over a raw connection, after a PROXY header if
	// header is set.
	handshake := func(t *testing.T, addr string, header bool) (*gossh.Client, error) {
		t.Helper()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		if header {
			h := proxyproto.HeaderProxyFromAddrs(1, client, nc.RemoteAddr())
			if _, err := h.WriteTo(nc); err != nil {
				t.Fatal(err)
			}
		}
		_ = nc.SetDeadline(time.Now().Add(waitTime))
		cc, chans, reqs, err := gossh.NewClientConn(nc, addr, &gossh.ClientConfig{
			HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		})
		if err != nil {
			return nil, err
		}
		_ = nc.SetDeadline(time.Time{})
		c := gossh.NewClient(cc, chans, reqs)
		t.Cleanup(func() { _ = c.Close() })
		return c, nil
	}

	t.Run("trusted balancer", func(t *testing.T) {
		ts := startServer(t, func(c *Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		c, err := handshake(t, ts.addr, true)
		if err != nil {
			t.Fatal(err)
		}
		sess := openTerm(t, c, 80, 24, nil)
		waitFor(t, sess.out, "client 203.0.113.9")
		if _, err := handshake(t, ts.addr, false); err == nil {
			t.Error("a trusted balancer's connection without a header was served")
		}
	})
	t.Run("anyone else", func(t *testing.T) {
		ts := startServer(t, func(c *Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		for _, header := range []bool{false, true} {
			c, err := handshake(t, ts.addr, header)
			if err != nil {
				t.Fatal(err)
			}
			// The SSH layer skips a header line it does not know; what
			// counts is that the claimed address is not believed.
			sess := openTerm(t, c, 80, 24, nil)
			waitFor(t, sess.out, "client 127.0.0.1")
		}
	})
}

// TestDebugHostCheck: a page on another site that rebinds its own name to
// 127.0.0.1 reaches the debug port with its own name as Host; only loopback
// names and addresses are answered.
func TestDebugHostCheck(t *testing.T) {
	ts := startServer(t, nil)
	h := ts.DebugHandler()
	for _, tc := range []struct {
		host string
		want int
	}{
		{"localhost", http.StatusOK},
		{"localhost:6060", http.StatusOK},
		{"LOCALHOST.:6060", http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"127.0.0.1:6060", http.StatusOK},
		{"127.8.9.10:1", http.StatusOK},
		{"[::1]:6060", http.StatusOK},
		{"[::1]", http.StatusOK},
		{"[::ffff:127.0.0.1]:6060", http.StatusOK},
		{"evil.example", http.StatusForbidden},
		{"evil.example:6060", http.StatusForbidden},
		{"localhost.evil.example", http.StatusForbidden},
		{"evil.localhost", http.StatusForbidden},
		{"192.0.2.1:6060", http.StatusForbidden},
		{"[2001:db8::1]:6060", http.StatusForbidden},
		{"[fe80::1%25lo]:6060", http.StatusForbidden},
		{"0.0.0.0:6060", http.StatusForbidden},
		{"", http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", "/stats", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %q: status %d, want %d", tc.host, rec.Code, tc.want)
		}
		if tc.want != http.StatusOK && strings.Contains(rec.Body.String(), "sessions") {
			t.Errorf("Host %q: refused request got the stats: %s", tc.host, rec.Body)
		}
	}

	// The same through ServeDebug's real listener, as a rebinding browser
	// would send it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	ts.log.SetOutput(io.MultiWriter(ts.logs, addrLineWriter(addrs)))
	errc := make(chan error, 1)
	go func() { errc <- ts.ServeDebug(ctx, "127.0.0.1:0") }()
	var addr string
	select {
	case addr = <-addrs:
	case <-time.After(waitTime):
		t.Fatal("debug endpoint did not start")
	}
	for host, want := range map[string]int{"rebound.example:80": http.StatusForbidden, addr: http.StatusOK} {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/stats", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q over a real socket: status %d, want %d", host, resp.StatusCode, want)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Error(err)
	}
}

// addrLineWriter sends the address of the "debug endpoint" log line to c.
type addrLineWriter chan<- string

func (c addrLineWriter) Write(p []byte) (int, error) {
	if m := regexp.MustCompile(`debug endpoint listen=(\S+)`).FindSubmatch(p); m != nil {
		select {
		case c <- string(m[1]):
		default:
		}
	}
	return len(p), nil
}
