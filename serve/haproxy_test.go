package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/otplogin/otplogin/internal/haproxytest"
	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/redisstore"
	"github.com/otplogin/otplogin/ui"
)

// balanced is a deployment as docs/REDIS.md describes it: two replicas,
// each a Server with the real ui over an otp.Service of its own, with its
// own Redis connection pool and mail sender, sharing one Redis, the code
// key and the host key, behind HAProxy speaking PROXY protocol v2.
type balanced struct {
	replicas [2]*testServer
	proxy    *haproxytest.Proxy
	dev      *devserver.Server
	hostKey  gossh.PublicKey
}

func startBalanced(t *testing.T, lim otp.Limits) *balanced {
	t.Helper()
	rdb := redistest.Start(t)
	dev, err := devserver.Start(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hostKey := filepath.Join(t.TempDir(), "host_key") // one identity for every replica
	b := &balanced{dev: dev}
	var backends []string
	for i := range b.replicas {
		// A generous store timeout: the machine running the tests may be
		// busy, and no call here is meant to time out.
		store, err := redisstore.Open(t.Context(), rdb.URL(), redisstore.Options{Secret: key, Timeout: waitTime / 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		sender, err := mail.New(dev.SenderConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sender.Close() })
		svc, err := otp.New(otp.Config{Key: key, Limits: lim}, store, sender)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		b.replicas[i] = startServer(t, func(c *Config) {
			c.HostKeyPath = hostKey
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			// Many logins from two clients, and health checks every 200ms.
			c.ConnRate, c.ConnBurst = 1000, 1000
			// In-flight logins may finish when a replica stops, and Serve
			// still returns within the test helper's wait.
			c.ShutdownGrace = waitTime / 2
			c.NewModel = func(s Session) tea.Model {
				return ui.New(ui.Options{Service: svc, Client: s.Client, Remote: true, Context: s.Context(), Logger: s.Logger})
			}
		})
		backends = append(backends, b.replicas[i].addr)
	}
	b.hostKey = b.replicas[0].HostKey()
	if !bytes.Equal(b.replicas[1].HostKey().Marshal(), b.hostKey.Marshal()) {
		t.Fatal("the replicas have different host keys: clients would see the key change")
	}
	b.proxy = haproxytest.Start(t, haproxytest.Config{Backends: backends})
	b.proxy.WaitState(t, "r1", "UP")
	b.proxy.WaitState(t, "r2", "UP")
	return b
}

// code waits for the mail to to and returns its code.
func (b *balanced) code(to string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	msg, err := b.dev.WaitFor(ctx, to, time.Time{})
	if err != nil {
		return "", fmt.Errorf("no mail for %s: %w", to, err)
	}
	return mail.CodeFromMessage(msg.Raw)
}

// sessionsTotal is each replica's count of sessions started.
func (b *balanced) sessionsTotal() [2]int64 {
	return [2]int64{b.replicas[0].Stats().SessionsTotal, b.replicas[1].Stats().SessionsTotal}
}

// term is a terminal session through the balancer from a source address
// of the test's choice. Its methods return errors rather than fail the
// test, so that many can run at once.
type term struct {
	client *gossh.Client
	sess   *gossh.Session
	out    *safeBuffer
	stdin  interface{ Write([]byte) (int, error) }
}

// dialTerm connects from src (a loopback address) to the balancer and
// opens a shell on an 80x24 PTY. The host key must be the replicas' one.
func (b *balanced) dialTerm(src string) (*term, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTime}
	nc, err := d.Dial("tcp", b.proxy.Addr())
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(waitTime))
	conn, chans, reqs, err := gossh.NewClientConn(nc, b.proxy.Addr(), &gossh.ClientConfig{
		User:            "anyone",
		HostKeyCallback: gossh.FixedHostKey(b.hostKey),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	tm := &term{client: gossh.NewClient(conn, chans, reqs), out: &safeBuffer{}}
	if tm.sess, err = tm.client.NewSession(); err != nil {
		tm.close()
		return nil, err
	}
	tm.sess.Stdout, tm.sess.Stderr = tm.out, tm.out
	in, err := tm.sess.StdinPipe()
	if err == nil {
		tm.stdin = in
		err = tm.sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{})
	}
	if err == nil {
		err = tm.sess.Shell()
	}
	if err != nil {
		tm.close()
		return nil, err
	}
	return tm, nil
}

func (tm *term) close() { _ = tm.client.Close() }

func (tm *term) typeText(s string) error {
	_, err := tm.stdin.Write([]byte(s))
	return err
}

// turnedAway is the line a stopping server sends instead of a session.
const turnedAway = "The server is shutting down. Please try again"

// waitFor waits until the screen shows want, or says the server turned
// the session away.
func (tm *term) waitFor(want string) error {
	deadline := time.Now().Add(waitTime)
	for !strings.Contains(tm.out.String(), want) {
		if strings.Contains(tm.out.String(), turnedAway) {
			return errors.New(turnedAway)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %q in:\n%q", want, tm.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// exitStatus waits for the session to end: its status, -1 for none.
func (tm *term) exitStatus() (int, error) {
	errc := make(chan error, 1)
	go func() { errc <- tm.sess.Wait() }()
	select {
	case err := <-errc:
		var exit *gossh.ExitError
		switch {
		case err == nil:
			return 0, nil
		case errors.As(err, &exit):
			return exit.ExitStatus(), nil
		}
		return -1, nil
	case <-time.After(waitTime):
		return -1, errors.New("the session did not end")
	}
}

// login runs a whole login through the balancer: address, code from the
// mail, "Verified", exit status 0. It reports whether the screen said
// "Verified".
func (b *balanced) login(src, addr string) (verified bool, err error) {
	tm, err := b.dialTerm(src)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer tm.close()
	steps := []func() error{
		func() error { return tm.waitFor("Email") },
		func() error { return tm.typeText(addr + "\r") },
		func() error { return tm.waitFor("Check your email") },
		func() error {
			code, err := b.code(addr)
			if err == nil {
				err = tm.typeText(code + "\r")
			}
			return err
		},
		func() error { return tm.waitFor("Verified") },
		func() error { return tm.typeText("\r") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return i > 4, err
		}
	}
	if st, err := tm.exitStatus(); err != nil || st != 0 {
		return true, fmt.Errorf("verified, but the session ended with status %d, %v", st, err)
	}
	return true, nil
}

func (b *balanced) logs() string {
	return b.replicas[0].logs.String() + b.replicas[1].logs.String()
}

// TestHAProxyRealClient: behind the balancer the replicas see each
// client's own address, so a per-client limit counts per client, not for
// everyone who comes through the balancer.
func TestHAProxyRealClient(t *testing.T) {
	lim := otp.DefaultLimits()
	lim.ClientIssues = 1
	b := startBalanced(t, lim)
	request := func(src, addr, want string) {
		t.Helper()
		tm, err := b.dialTerm(src)
		if err != nil {
			t.Fatalf("%v\nhaproxy:\n%s\nreplicas:\n%s", err, b.proxy.Log(), b.logs())
		}
		defer tm.close()
		for _, err := range []error{tm.waitFor("Email"), tm.typeText(addr + "\r"), tm.waitFor(want)} {
			if err != nil {
				t.Fatalf("%s from %s: %v", addr, src, err)
			}
		}
	}
	request("127.0.0.2", "alice@example.com", "Check your email")
	request("127.0.0.2", "bob@example.com", "Too many codes from this connection")
	// Were 127.0.0.2's code counted for the balancer, this would be refused.
	request("127.0.0.3", "carol@example.com", "Check your email")

	waitLogs := time.Now().Add(waitTime)
	for !strings.Contains(b.logs(), "client=127.0.0.3") && time.Now().Before(waitLogs) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := b.logs()
	for _, want := range []string{"client=127.0.0.2", "client=127.0.0.3"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the replicas' logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "client=127.0.0.1") {
		t.Errorf("a replica took the balancer's address for a client's:\n%s", logs)
	}
}

// TestHAProxyCrossReplica: a code requested on a connection that landed on
// one replica verifies on a connection that landed on the other, once.
func TestHAProxyCrossReplica(t *testing.T) {
	b := startBalanced(t, otp.DefaultLimits())
	const addr = "dave@example.com"
	// landed opens a session and says which replica it landed on.
	landed := func() (*term, int) {
		t.Helper()
		before := b.sessionsTotal()
		tm, err := b.dialTerm("127.0.0.2")
		if err == nil {
			err = tm.waitFor("Email")
		}
		if err != nil {
			t.Fatal(err)
		}
		after := b.sessionsTotal()
		for i := range after {
			if after[i] > before[i] {
				return tm, i
			}
		}
		t.Fatal("no replica counted the session")
		return nil, 0
	}

	first, on := landed()
	defer first.close()
	if err := first.typeText(addr + "\r"); err != nil {
		t.Fatal(err)
	}
	if err := first.waitFor("Check your email"); err != nil {
		t.Fatal(err)
	}
	code, err := b.code(addr)
	if err != nil {
		t.Fatal(err)
	}

	var second *term
	for range 4 { // round robin lands the next one elsewhere; allow for checks
		tm, i := landed()
		if i != on {
			second = tm
			break
		}
		tm.close()
	}
	if second == nil {
		t.Fatalf("four connections in a row landed on replica %d", on+1)
	}
	defer second.close()
	for _, err := range []error{
		second.typeText(addr + "\r"), second.waitFor("already sent"),
		second.typeText(code + "\r"), second.waitFor("Verified"),
	} {
		if err != nil {
			t.Fatalf("on the other replica: %v", err)
		}
	}
	// Used up on every replica.
	if err := first.typeText(code + "\r"); err != nil {
		t.Fatal(err)
	}
	if err := first.waitFor("No code is waiting"); err != nil {
		t.Fatalf("the used code on the first replica: %v", err)
	}
}

// TestHAProxyReplicaStops: one replica is stopped while logins run
// through the balancer. Its sessions in flight may finish (graceful
// shutdown), new connections go to the other replica, and no login that
// said "Verified" is lost: every one ends with status 0. The only failures
// allowed are sessions the stopping replica turned away with its "shutting
// down" line: connections it had accepted just before it closed its
// listener, which no balancer can move.
func TestHAProxyReplicaStops(t *testing.T) {
	lim := otp.DefaultLimits()
	lim.ClientIssues = 1000
	b := startBalanced(t, lim)

	var (
		stop     = make(chan struct{})
		n        atomic.Int64
		verified atomic.Int64
		mu       sync.Mutex
		turned   int         // turned away by the stopping replica
		reset    int         // reset by the stopping replica's closed listener
		stopping atomic.Bool // r1 is closing its listener
		down     atomic.Bool // HAProxy has marked r1 down: no new connection reaches it
		failures []error     // anything else
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			src := fmt.Sprintf("127.0.0.%d", 2+w%2)
			for fails := 0; fails < 3; {
				select {
				case <-stop:
					return
				default:
				}
				addr := fmt.Sprintf("u%d@example.com", n.Add(1))
				mayReachR1 := !down.Load()
				said, err := b.login(src, addr)
				if err == nil {
					verified.Add(1)
					fails = 0
					continue
				}
				mu.Lock()
				switch {
				case !said && err.Error() == turnedAway:
					turned++
				case !said && mayReachR1 && stopping.Load() && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
					// A connection still in r1's accept queue when it closes
					// its listener is reset by the kernel, and HAProxy does
					// not redispatch a connection that had connected.
					reset++
				default:
					failures = append(failures, fmt.Errorf("%s from %s (said Verified: %v): %w", addr, src, said, err))
					fails++
				}
				mu.Unlock()
			}
		})
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * waitTime)
		for !ok() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s (verified %d, failures %v)\nhaproxy:\n%s\nreplica 1:\n%s\nreplica 2:\n%s",
					what, verified.Load(), failures, b.proxy.Log(), b.replicas[0].logs, b.replicas[1].logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("logins on both replicas", func() bool { return verified.Load() >= 4 })
	r1 := b.replicas[0]
	waitUntil("a session in flight on replica 1", func() bool { return r1.Stats().Sessions > 0 })
	inFlight := r1.Stats().Sessions
	stopped := make(chan error, 1)
	stopAt := time.Now()
	stopping.Store(true)
	go func() { err := r1.stop(); t.Logf("replica 1 stopped in %v", time.Since(stopAt)); stopped <- err }()
	b.proxy.WaitState(t, "r1", "DOWN")
	down.Store(true)
	atStop := verified.Load()
	waitUntil("logins after the stop", func() bool { return verified.Load() >= atStop+8 })
	close(stop)
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Errorf("replica 1 stop: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d logins verified, %d turned away and %d reset by the stopping replica; %d sessions were in flight on it when it stopped",
		verified.Load(), turned, reset, inFlight)
	for _, err := range failures {
		t.Errorf("login failed: %v", err)
	}
	if got := strings.Count(r1.logs.String(), "outcome=verified"); got == 0 {
		t.Errorf("replica 1 logged no verified login:\n%s", r1.logs)
	}
}
