package serve

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
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
	ts.waitEvent(t, "size 80x24")
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
	ts.waitEvent(t, "size 80x24")
	rec := httptest.NewRecorder()
	ts.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
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
	time.Sleep(20 * time.Millisecond) // let it listen; the test is that it returns nil
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
