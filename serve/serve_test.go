package serve

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/internal/leakcheck"
)

func TestSessionRunsModel(t *testing.T) {
	ts := startServer(t, nil)
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	waitFor(t, sess.out, "client 127.0.0.1")
	sess.typeText(t, "hello\r")
	ts.waitEvent(t, "typed hello")
	if status := sess.wait(t); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
	ts.waitStats(t, "session released", func(s Stats) bool { return s.Sessions == 0 })
	logs := ts.logs.String()
	for _, want := range []string{"session start", "session end", "outcome=submitted", "end=quit", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestNoPTY(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name  string
		start func(*gossh.Session) error
	}{
		{"shell", (*gossh.Session).Shell},                                  // ssh -T host
		{"command", func(s *gossh.Session) error { return s.Start("ls") }}, // ssh host ls
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := dial(t, ts.addr).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out := &safeBuffer{}
			sess.Stdout, sess.Stderr = out, out
			if err := tc.start(sess); err != nil {
				t.Fatal(err)
			}
			err = waitSession(t, sess)
			var exit *gossh.ExitError
			if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
				t.Errorf("err = %v, want exit status 1", err)
			}
			if got := out.String(); got != lineNoPTY+"\n" {
				t.Errorf("output %q, want %q", got, lineNoPTY+"\n")
			}
		})
	}
}

func TestWindowChangeReachesModel(t *testing.T) {
	ts := startServer(t, nil)
	// Within the clamp, sizes pass unchanged.
	sess := openTerm(t, dial(t, ts.addr), 40, 12, nil)
	ts.waitEvent(t, "size 40x12")
	if err := sess.WindowChange(14, 50); err != nil {
		t.Fatal(err)
	}
	ts.waitEvent(t, "size 50x14")
}

func TestHugeWindowIsClamped(t *testing.T) {
	ts := startServer(t, nil)
	sess, err := dial(t, ts.addr).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 60000, 60000, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("size %dx%d", maxCols, maxRows)
	ts.waitEvent(t, want)
	if err := sess.WindowChange(maxRows-2, 1<<20); err != nil {
		t.Fatal(err)
	}
	ts.waitEvent(t, fmt.Sprintf("size %dx%d", maxCols, maxRows-2))
}

func TestColourFollowsClient(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		want     string // in the first frame
		dontWant string
	}{
		{"truecolor", map[string]string{"COLORTERM": "truecolor"}, "38;2;255;0;0", ""},
		{"256 colours", nil, "38;5;", "38;2;"},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, "otplogin test", "38;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := openTerm(t, dial(t, ts.addr), 80, 24, tc.env)
			waitFor(t, sess.out, "otplogin test")
			waitFor(t, sess.out, tc.want)
			if tc.dontWant != "" && strings.Contains(sess.out.String(), tc.dontWant) {
				t.Errorf("output has %q:\n%q", tc.dontWant, sess.out.String())
			}
			sess.typeText(t, "\x03")
			sess.wait(t)
		})
	}
}

func TestSessionCaps(t *testing.T) {
	for _, tc := range []struct {
		name              string
		global, perClient int
		want              string
	}{
		{"global", 2, 10, lineBusy},
		{"per client", 10, 2, lineClientSessions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(c *Config) {
				c.MaxSessions, c.MaxSessionsPerClient = tc.global, tc.perClient
			})
			for range 2 {
				openTerm(t, dial(t, ts.addr), 80, 24, nil)
				ts.waitEvent(t, size80x24)
			}
			extra := openTerm(t, dial(t, ts.addr), 80, 24, nil)
			if status := extra.wait(t); status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			if got := extra.out.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output %q, want %q", got, tc.want)
			}
			if s := ts.Stats(); s.Sessions != 2 || s.Turned != 1 {
				t.Errorf("stats %+v, want 2 live sessions and 1 turned away", s)
			}
		})
	}
}

func TestOneSessionPerConnection(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	openTerm(t, c, 80, 24, nil)
	ts.waitEvent(t, size80x24)
	if _, err := c.NewSession(); err == nil {
		t.Fatal("second session on one connection was accepted")
	}
}

func TestConnectionRate(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ConnRate, c.ConnBurst = rate.Every(time.Hour), 2
	})
	for i := range 2 {
		if _, err := dialErr(ts.addr); err != nil {
			t.Fatalf("connection %d refused: %v", i, err)
		}
	}
	if c, err := dialErr(ts.addr); err == nil {
		_ = c.Close()
		t.Fatal("third connection in the burst was accepted")
	}
	if got := ts.Stats().Refused; got != 1 {
		t.Errorf("refused = %d, want 1", got)
	}
}

func TestHandshakeDeadline(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Read the server's version line, then say nothing: the server must hang
	// up by itself.
	_ = nc.SetReadDeadline(time.Now().Add(waitTime))
	buf := make([]byte, 256)
	for {
		if _, err := nc.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server kept a silent connection open")
			}
			break
		}
	}
	ts.waitStats(t, "connection released", func(s Stats) bool { return s.Conns == 0 })
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	// No wait for the program's first size event: on a slow machine the
	// limit can end the session before the program sees one.
	sess.wait(t) // returns only because the server closed the idle connection
	ts.waitStats(t, "session released", func(s Stats) bool { return s.Sessions == 0 && s.Conns == 0 })
	waitFor(t, ts.logs, "end=disconnected")
}

func TestTimeLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxTimeout = farewellTime + 300*time.Millisecond })
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	// No wait for the program's first size event: on a slow machine the
	// limit can end the session before the program sees one.
	go func() { // activity does not extend the limit
		for {
			if _, err := sess.stdin.Write([]byte("a")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if status := sess.wait(t); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	if !strings.Contains(sess.out.String(), lineTimeLimit) {
		t.Errorf("output lacks %q", lineTimeLimit)
	}
	waitFor(t, ts.logs, `end=time_limit`)
}

func TestInputLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxInputBytes = 1024 })
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	sess.typeText(t, strings.Repeat("x", 4096))
	if status := sess.wait(t); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	if !strings.Contains(sess.out.String(), lineInput) {
		t.Errorf("output lacks %q", lineInput)
	}
	waitFor(t, ts.logs, `end=input_limit`)
}

func TestConnectionByteLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnBytes = 128 << 10 })
	sess := openTerm(t, dial(t, ts.addr), 40, 12, nil)
	ts.waitEvent(t, "size 40x12")
	// Window changes reach the program only when the size changes; they are
	// a flood it hardly sees, which MaxConnBytes stops.
	for i := range 100_000 {
		if err := sess.WindowChange(10+i%2, 30); err != nil {
			ts.waitStats(t, "connection closed", func(s Stats) bool { return s.Conns == 0 })
			waitFor(t, ts.logs, "limit=max_conn_bytes")
			return
		}
	}
	t.Fatal("server accepted 6 MiB of window changes")
}

func TestClientDisconnectsMidSend(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	sess := openTerm(t, c, 80, 24, nil)
	ts.waitEvent(t, size80x24)
	go func() { // keeps sending until the connection is gone
		for {
			if _, err := sess.stdin.Write([]byte("abcdefgh")); err != nil {
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let some input be in flight; not a timing assertion
	_ = c.Close()
	ts.waitStats(t, "session released", func(s Stats) bool { return s.Sessions == 0 && s.Conns == 0 })
	waitFor(t, ts.logs, "end=disconnected")

	// The server still serves others.
	other := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	other.typeText(t, "ok\r")
	if status := other.wait(t); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
}

func TestPanicEndsOnlyThatSession(t *testing.T) {
	ts := startServer(t, nil)
	healthy := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	doomed := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	doomed.typeText(t, "\x10") // ctrl+p panics in the test model
	if status := doomed.wait(t); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	out := doomed.out.String()
	if !strings.Contains(out, lineError) || strings.Contains(out, "test model panic") || strings.Contains(out, "goroutine") {
		t.Errorf("panicked session shows %q", out)
	}
	healthy.typeText(t, "ok\r")
	ts.waitEvent(t, "typed ok")
	if status := healthy.wait(t); status != 0 {
		t.Errorf("healthy session exit status %d, want 0", status)
	}
	waitFor(t, ts.logs, "end=panic")
}

func TestShutdownWithLiveSessions(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.ShutdownGrace = 300 * time.Millisecond })
	var sessions []*termSession
	for range 3 {
		sessions = append(sessions, openTerm(t, dial(t, ts.addr), 80, 24, nil))
		ts.waitEvent(t, size80x24)
	}
	waitStopped := stopAsync(t, ts.stop)
	for range sessions {
		ts.waitEvent(t, "shutdown")
	}
	for i, s := range sessions {
		if status := s.wait(t); status != 1 {
			t.Errorf("session %d exit status %d, want 1", i, status)
		}
		if !strings.Contains(s.out.String(), lineShutdown) {
			t.Errorf("session %d was not told: %q", i, s.out.String())
		}
	}
	waitStopped()
	if _, err := dialErr(ts.addr); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestGoroutinesReturnToBaseline(t *testing.T) {
	ts := startServer(t, nil)
	session := func() {
		c, err := dialErr(ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		s := openTerm(t, c, 80, 24, nil)
		ts.waitEvent(t, size80x24)
		s.typeText(t, "\r")
		s.wait(t)
		_ = c.Close()
		ts.waitStats(t, "connection released", func(s Stats) bool { return s.Conns == 0 })
	}
	session() // the first session starts process-wide helpers
	leakcheck.Check(t)
	for range 5 {
		session()
	}
}

func TestHostKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "host_key")
	first, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.PublicKey().Type(); got != gossh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ed25519", got)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	again, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := gossh.FingerprintSHA256(first.PublicKey()), gossh.FingerprintSHA256(again.PublicKey()); a != b {
		t.Errorf("fingerprint changed across loads: %s then %s", a, b)
	}
}

func TestHostKeyStableAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_key")
	var seen []string
	for range 2 {
		ts := startServer(t, func(c *Config) { c.HostKeyPath = path })
		var got gossh.PublicKey
		c, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
			HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error { got = key; return nil },
			Timeout:         waitTime,
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		seen = append(seen, gossh.FingerprintSHA256(got))
		if err := ts.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if seen[0] != seen[1] {
		t.Errorf("host key changed across restarts: %v", seen)
	}
}

func TestBadHostKeyFile(t *testing.T) {
	write := func(data string) func(string) error {
		return func(path string) error { return os.WriteFile(path, []byte(data), 0o600) }
	}
	for _, tc := range []struct {
		name   string
		create func(path string) error
	}{
		{"garbage", write("not a key\n")},
		{"empty", write("")},
		{"truncated", write("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")},
		{"directory", func(path string) error { return os.Mkdir(path, 0o700) }}, // unreadable even for root
		{"readable by others", func(path string) error {
			if _, err := LoadHostKey(path); err != nil { // a good key
				return err
			}
			return os.Chmod(path, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "host_key")
			if err := tc.create(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			_, err := New(Config{HostKeyPath: path, NewModel: startServerModel})
			if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), path) {
				t.Fatalf("New = %v, want an ErrHostKey naming %s", err, path)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the bad key file was changed")
			}
		})
	}
}

// TestHostKeyCreatedOnce starts replicas at once on a new shared key file:
// every one must come up with the same key, none with half a file.
func TestHostKeyCreatedOnce(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "host_key")
		keys := make([]string, 8)
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				signer, err := LoadHostKey(path)
				if err == nil {
					keys[i] = string(signer.PublicKey().Marshal())
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil || keys[i] != keys[0] {
				t.Fatalf("round %d, replica %d: err %v, same key %v", round, i, errs[i], keys[i] == keys[0])
			}
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".otplogin-host-key-*")); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
}

// TestResizeAfterProgramEnds: the SSH library's request loop hands each
// window change to the session and blocks until it is taken. A client that
// goes on resizing after its program ended must not leave that loop (and
// its session) blocked for good.
func TestResizeAfterProgramEnds(t *testing.T) {
	ts := startServer(t, nil)
	wc := dial(t, ts.addr)
	warm := openTerm(t, wc, 80, 24, nil) // process-wide helpers start with the first session
	ts.waitEvent(t, size80x24)
	warm.typeText(t, "\r")
	warm.wait(t)
	_ = wc.Close()
	ts.waitStats(t, "warm-up connection gone", func(s Stats) bool { return s.Conns == 0 })
	leakcheck.Check(t)
	for range 5 {
		c, err := dialErr(ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		sess := openTerm(t, c, 40, 12, nil)
		ts.waitEvent(t, "size 40x12")
		sess.typeText(t, "\r") // the program quits...
		for i := 0; ; i++ {    // ...while the window keeps changing
			if err := sess.WindowChange(10+i%2, 30); err != nil {
				break
			}
		}
		sess.wait(t)
		_ = c.Close()
		ts.waitStats(t, "connection released", func(s Stats) bool { return s.Conns == 0 })
	}
}

// TestResizeInLineMode: in line mode no program takes window changes; the
// session drains them, so that a client resizing its terminal there leaves
// no request loop blocked once the session ends.
func TestResizeInLineMode(t *testing.T) {
	ls := startLoginServer(t, nil)
	lines := func(resize bool) {
		c, err := dialErr(ls.addr)
		if err != nil {
			t.Fatal(err)
		}
		sess := openTerm(t, c, 80, 24, map[string]string{"ACCESSIBLE": "1"})
		waitFor(t, sess.out, "To leave, type quit.")
		for i := range 3 {
			if resize {
				if err := sess.WindowChange(20+i, 70); err != nil {
					t.Fatal(err)
				}
			}
		}
		sess.typeText(t, "quit\r")
		if status := sess.wait(t); status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
		_ = c.Close()
		ls.waitStats(t, "connection released", func(s Stats) bool { return s.Conns == 0 })
	}
	lines(false) // process-wide helpers start with the first session
	leakcheck.Check(t)
	for range 3 {
		lines(true)
	}
}
