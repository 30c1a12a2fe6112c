package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/syncbuf"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"charm.land/log/v2"
	gossh "golang.org/x/crypto/ssh"
)

// waitTime bounds every wait in these tests; nothing should come near it.
const waitTime = 10 * time.Second

// size80x24 is the event of a model started in an 80x24 terminal, which is
// clamped to the largest window.
var size80x24 = fmt.Sprintf("size %dx%d", min(80, maxCols), min(24, maxRows))

// safeBuffer is a bytes.Buffer that the server, the SSH client and the test
// may use at once.
type safeBuffer = syncbuf.Buffer

// waitFor polls until b contains want, failing the test after waitTime.
func waitFor(t *testing.T, b *safeBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%q", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForMatch polls until b matches re, failing the test after waitTime.
func waitForMatch(t *testing.T, b *safeBuffer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !re.MatchString(b.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s in:\n%q", re, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testModel is a tiny stand-in for the ui model: it reports what it sees on
// events and draws a coloured title.
type testModel struct {
	events  chan<- string
	client  string
	w, h    int
	typed   string
	outcome string
	notice  string
}

var titleStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("#FF0000"))

func (m testModel) emit(e string) {
	select {
	case m.events <- e:
	default: // never block the program on a test that stopped listening
	}
}

func (m testModel) Init() tea.Cmd { return nil }

func (m testModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.emit(fmt.Sprintf("size %dx%d", m.w, m.h))
	case interface{ Notice() string }: // as a model that does not import serve would
		m.notice = msg.Notice()
		m.emit("shutdown")
	case tea.KeyPressMsg:
		switch msg.String() {
		case "enter":
			m.outcome = "submitted"
			m.emit("typed " + m.typed)
			return m, tea.Quit
		case "ctrl+c":
			m.outcome = "cancelled"
			return m, tea.Quit
		case "ctrl+p":
			panic("test model panic")
		default:
			m.typed += msg.Text
		}
	}
	return m, nil
}

func (m testModel) View() tea.View {
	return tea.NewView(fmt.Sprintf("%s\nclient %s\n> %s\n%s",
		titleStyle.Render("otplogin test"), m.client, m.typed, m.notice))
}

func (m testModel) Outcome() string { return m.outcome }

// Verified: Enter stands for a code accepted, for what was typed.
func (m testModel) Verified() (string, bool) {
	return m.typed, m.outcome == "submitted" && m.typed != ""
}

type testServer struct {
	*Server
	addr   string
	logs   *safeBuffer
	events chan string
	stop   func() error // cancels Serve's context and waits for it
}

// startServer runs a Server with the test model on 127.0.0.1:0. mutate
// changes the Config before New; before changes the Server before Serve.
func startServer(t *testing.T, mutate func(*Config), before ...func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{logs: &safeBuffer{}, events: make(chan string, 256)}
	cfg := Config{
		HostKeyPath:   filepath.Join(t.TempDir(), "host_key"),
		Logger:        log.NewWithOptions(ts.logs, log.Options{Level: log.DebugLevel}),
		ShutdownGrace: time.Second,
		NewModel: func(s Session) tea.Model {
			return testModel{events: ts.events, client: s.Client}
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range before {
		f(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	var once sync.Once
	var serveErr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(waitTime):
				serveErr = errors.New("Serve did not return after shutdown")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Error(err)
		}
	})
	ts.Server, ts.addr = srv, l.Addr().String()
	return ts
}

// waitEvent reads the test model's events until want arrives.
func (ts *testServer) waitEvent(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(waitTime)
	for {
		select {
		case e := <-ts.events:
			if e == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for model event %q; server log:\n%s", want, ts.logs)
		}
	}
}

// waitStats polls Stats until ok holds.
func (ts *testServer) waitStats(t *testing.T, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !ok(ts.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, ts.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, addr string) *gossh.Client {
	t.Helper()
	c, err := dialErr(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialErr(addr string) (*gossh.Client, error) {
	return gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "anyone",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         waitTime,
	})
}

// termSession is a client session with a PTY and a running shell.
type termSession struct {
	*gossh.Session
	out   *safeBuffer // stdout and stderr
	stdin interface{ Write([]byte) (int, error) }
}

func openTerm(t *testing.T, c *gossh.Client, w, h int, env map[string]string) *termSession {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	for k, v := range env {
		if err := sess.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	ts := &termSession{Session: sess, out: &safeBuffer{}}
	sess.Stdout, sess.Stderr = ts.out, ts.out
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.stdin = in
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (s *termSession) typeText(t *testing.T, text string) {
	t.Helper()
	if _, err := s.stdin.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the session to end and returns its exit status; -1 means
// it ended without one.
func (s *termSession) wait(t *testing.T) int {
	t.Helper()
	err := waitSession(t, s.Session)
	var exit *gossh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitStatus()
	default:
		return -1
	}
}

// waitSession is sess.Wait with a deadline.
func waitSession(t *testing.T, sess *gossh.Session) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- sess.Wait() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitTime):
		t.Fatal("session did not end")
		return nil
	}
}

// startServerModel is a NewModel for servers whose sessions the test ignores.
func startServerModel(Session) tea.Model { return testModel{} }

// stopAsync starts stop (a test server's) in the background and returns a
// function that waits for it to return, failing on an error or a hang.
func stopAsync(t *testing.T, stop func() error) (wait func()) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	return func() {
		t.Helper()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitTime):
			t.Fatal("Serve did not return")
		}
	}
}
