package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/internal/fakeclock"
)

// TestEnvRequestCap: a session that set more than MaxEnvRequests
// variables is refused its shell, and told why; one at the cap is served.
func TestEnvRequestCap(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		vars    int
		granted bool
	}{{64, true}, {65, false}} {
		t.Run(fmt.Sprint(tc.vars), func(t *testing.T) {
			sess, err := dial(t, ts.addr).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			// What the server writes before the shell starts; OpenSSH's
			// client shows it, x/crypto/ssh's only through the pipe.
			stderr, err := sess.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			out := &safeBuffer{}
			go func() { _, _ = io.Copy(out, stderr) }()
			for i := range tc.vars {
				if err := sess.Setenv(fmt.Sprint("VAR", i), "x"); err != nil {
					t.Fatal(err)
				}
			}
			if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
				t.Fatal(err)
			}
			err = sess.Shell()
			if granted := err == nil; granted != tc.granted {
				t.Fatalf("shell after %d variables: %v, want granted %v", tc.vars, err, tc.granted)
			}
			if tc.granted {
				ts.waitEvent(t, size80x24)
				return
			}
			waitFor(t, out, lineEnv)
			if s := ts.Stats(); s.Turned != 1 || s.SessionsTotal != 1 {
				t.Errorf("stats %+v, want 1 session and 1 turned away", s)
			}
		})
	}
}

// TestPreShellByteCap: before its shell, a connection may send
// MaxPreShellBytes; after it, up to MaxConnBytes.
func TestPreShellByteCap(t *testing.T) {
	ts := startServer(t, nil) // the defaults: 64 KiB before the shell, 4 MiB in all
	t.Run("before the shell", func(t *testing.T) {
		c := dial(t, ts.addr)
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		value := strings.Repeat("v", 4<<10)
		sent := 0
		for i := range 1000 {
			if sess.Setenv(fmt.Sprint("K", i), value) != nil {
				// Refused (past the env cap) or the connection is gone.
				if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
					break
				}
			}
			sent += len(value)
		}
		if sent > 64<<10 {
			t.Errorf("the connection sent %d bytes of environment before its shell, want at most 64 KiB", sent)
		}
		ts.waitStats(t, "connection closed", func(s Stats) bool { return s.Conns == 0 })
		waitFor(t, ts.logs, "limit=max_pre_shell_bytes")
	})
	t.Run("after the shell", func(t *testing.T) {
		c := dial(t, ts.addr)
		sess := openTerm(t, c, 40, 12, nil)
		ts.waitEvent(t, "size 40x12")
		// Window changes are small requests the program hardly notices: 2,000
		// of them are well over 64 KiB on the wire.
		for i := range 2000 {
			if err := sess.WindowChange(10+i%2, 30); err != nil {
				t.Fatalf("window change %d: %v", i, err)
			}
		}
		// Exit status 0 says Enter reached the model with the text typed:
		// the resizes above may have filled the test's event channel, so
		// the "typed" event itself can be dropped.
		sess.typeText(t, "still here\r")
		if status := sess.wait(t); status != 0 {
			t.Errorf("exit status %d, want 0", status)
		}
		waitFor(t, ts.logs, "end=quit")
		var in int64
		for _, line := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(line, "end=quit") {
				_, _ = fmt.Sscanf(line[strings.Index(line, "bytes_in="):], "bytes_in=%d", &in)
			}
		}
		if in <= 64<<10 {
			t.Errorf("bytes_in=%d, want more than 64 KiB for this session", in)
		}
	})
}

// TestReadRateShared: the read budget is the server's, not a client's: while
// one client floods, another client's handshake waits its turn, and it
// goes through again once the flood stops.
func TestReadRateShared(t *testing.T) {
	// The bucket holds a handshake, and one read of the SSH layer (4 KiB,
	// its buffer) takes a second of it. The input budget is out of the way:
	// the flood is typed text.
	ts := startServer(t, func(c *Config) { c.ReadRate, c.InputRate = 4<<10, 1<<30 })
	dialWithin := func(src string, d time.Duration) error {
		nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(d))
		_, _, _, err = gossh.NewClientConn(nc, ts.addr, &gossh.ClientConfig{HostKeyCallback: gossh.InsecureIgnoreHostKey()})
		return err
	}
	if err := dialWithin("127.0.0.2", waitTime); err != nil {
		t.Fatalf("a client alone: %v", err)
	}

	flooder, err := dialFrom(t, ts.addr, "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	sess := openTerm(t, flooder, 40, 12, nil)
	ts.waitEvent(t, "size 40x12")
	// About 24 KiB: six seconds of the budget. Typed text, which the SSH
	// layer buffers in the channel as it reads it, so the flood's reads
	// go on at the budget's pace: window changes, each handled in turn,
	// made a busy machine's server read the flood slower than the budget,
	// leaving it to the handshake.
	if _, err := sess.stdin.Write(bytes.Repeat([]byte("a"), 24<<10)); err != nil {
		t.Fatal(err)
	}
	// Each read of the handshake waits behind a chunk of the flood (a
	// second of the budget).
	err = dialWithin("127.0.0.4", 2*time.Second)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("another client's handshake during the flood: %v, want a timeout", err)
	}
	if s := ts.Stats(); s.ReadWaits == 0 || s.Refused != 0 {
		t.Errorf("stats %+v, want reads that waited and no connection refused", s)
	}
	// The flood was sent; the server reads what is left of it in turn and
	// then sees the connection closed.
	_ = flooder.Close()
	ts.waitStats(t, "the flood read", func(s Stats) bool { return s.Conns == 0 })
	if err := dialWithin("127.0.0.5", waitTime); err != nil {
		t.Errorf("a client after the flood: %v", err)
	}
}

// TestInputRateShared: past its free allowance, a session's input comes out
// of a budget all sessions share; a session that finds it spent is closed,
// while sessions within their allowance go on. The budget's clock stands
// still unless the test moves it.
func TestInputRateShared(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	ts := startServer(t, func(c *Config) {
		c.InputRate, c.InputAllowance, c.ConnRate = 512, 256, rate.Inf
	}, func(s *Server) { s.input.now = clock.Now })
	text := func(n int) string { return strings.Repeat("x", n) }
	login := func(src string, typed string, want int) {
		t.Helper()
		c, err := dialFrom(t, ts.addr, src)
		if err != nil {
			t.Fatal(err)
		}
		sess := openTerm(t, c, 80, 24, nil)
		ts.waitEvent(t, size80x24)
		sess.typeText(t, typed+"\r")
		if status := sess.wait(t); status != want {
			t.Errorf("from %s, typing %d bytes: exit status %d, want %d", src, len(typed), status, want)
		}
		if cut := strings.Contains(sess.out.String(), lineInput); cut != (want == 1) {
			t.Errorf("from %s: told %q: %v, want %v", src, lineInput, cut, want == 1)
		}
	}
	login("127.0.0.2", text(600), 0)  // 256 free, 345 of the 512
	login("127.0.0.3", text(4096), 1) // more than is left: closed
	login("127.0.0.4", text(600), 1)  // another client, but the budget is spent
	login("127.0.0.5", text(200), 0)  // within its own allowance
	clock.Advance(time.Second)        // the budget refills
	login("127.0.0.6", text(600), 0)
	if got := ts.Stats().InputRateEnds; got != 2 {
		t.Errorf("InputRateEnds = %d, want 2", got)
	}
	waitFor(t, ts.logs, `end=input_rate`)
}

func TestByteBudget(t *testing.T) {
	clock := fakeclock.New(time.Unix(1e9, 0))
	b := newByteBudget(100, clock.Now)
	if b.chunk != 100 {
		t.Errorf("chunk %d, want the bucket's 100", b.chunk)
	}
	if big := newByteBudget(1<<30, clock.Now); big.chunk != maxChunk {
		t.Errorf("chunk %d, want %d", big.chunk, maxChunk)
	}
	if !b.tryTake(60) || b.tryTake(60) || !b.tryTake(40) {
		t.Error("tryTake does not follow the bucket")
	}
	if b.refused.Load() != 1 {
		t.Errorf("refused %d, want 1", b.refused.Load())
	}
	clock.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	b.take(ctx, 100) // the refilled bucket: no wait
	if b.waits.Load() != 0 {
		t.Error("take waited with the bucket full")
	}
	// The bucket is empty and the clock stands still: take waits until its
	// context ends.
	done := make(chan struct{})
	go func() { b.take(ctx, 50); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(waitTime):
		t.Fatal("take did not return when its context ended")
	}
	if b.waits.Load() != 1 {
		t.Errorf("waits %d, want 1", b.waits.Load())
	}
}

// TestNoForwarding: the server opens nothing but sessions: no local or
// remote port forwarding, no subsystems, whatever the SSH library's
// process-wide defaults hold.
func TestNoForwarding(t *testing.T) {
	// As another package of the process might:
	ssh.DefaultRequestHandlers["tcpip-forward"] = (&ssh.ForwardedTCPHandler{}).HandleSSHRequest
	ssh.DefaultRequestHandlers["otplogin-test"] = func(ssh.Context, *ssh.Server, *gossh.Request) (bool, []byte) { return true, nil }
	ssh.DefaultSubsystemHandlers["sftp"] = func(ssh.Session) {}
	t.Cleanup(func() {
		delete(ssh.DefaultRequestHandlers, "tcpip-forward")
		delete(ssh.DefaultRequestHandlers, "otplogin-test")
		delete(ssh.DefaultSubsystemHandlers, "sftp")
	})
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	if conn, err := c.Dial("tcp", ts.addr); err == nil {
		_ = conn.Close()
		t.Error("local port forwarding (direct-tcpip) was allowed")
	}
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = l.Close()
		t.Error("remote port forwarding (tcpip-forward) was allowed")
	}
	if ok, _, err := c.SendRequest("otplogin-test", true, nil); ok || err != nil {
		t.Errorf("a global request handler of the library's defaults answered: %v, %v", ok, err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("a subsystem was started")
	}
}
