package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/activeterm"
	bm "charm.land/wish/v2/bubbletea"
)

// These tests drive a real wish server over real SSH, but with a tiny
// stand-in model instead of the ui package, so that the driver's own
// behaviour (screen matching, failure reasons, idle holding, clean-up) is
// tested against screens whose text the test controls, including a broken
// one the real UI cannot be made to draw.

// mailbox holds the codes the stand-in model "mailed"; it is the test's
// CodeReader.
type mailbox struct {
	mu    sync.Mutex
	codes map[string]string
}

func (m *mailbox) send(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.codes == nil {
		m.codes = map[string]string{}
	}
	m.codes[addr] = fmt.Sprintf("%06d", rand.IntN(1_000_000))
}

func (m *mailbox) Code(_ context.Context, addr string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.codes[addr]; ok {
		return c, nil
	}
	return "", errors.New("no code for address")
}

// standIn is a three-screen login: email, code, verified.
type standIn struct {
	mail       *mailbox
	codeScreen string // the code screen's text
	input      string
	addr       string
	verified   bool
}

func (m standIn) Init() tea.Cmd { return nil }

func (m standIn) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return m, nil
	}
	switch k.String() {
	case "ctrl+c":
		return m, tea.Quit
	case "enter":
		if m.addr == "" {
			m.addr, m.input = m.input, ""
			m.mail.send(m.addr)
		} else if code, _ := m.mail.Code(context.Background(), m.addr); m.input == code {
			m.verified = true
		}
	default:
		m.input += k.Text
	}
	return m, nil
}

func (m standIn) View() tea.View {
	switch {
	case m.verified:
		return tea.NewView("Verified " + m.addr)
	case m.addr != "":
		return tea.NewView(m.codeScreen + m.addr + "\nCode: " + m.input)
	}
	return tea.NewView("Email: " + m.input)
}

// serveStandIn starts a wish server on 127.0.0.1:0 and returns its address
// and the stand-in's mailbox.
func serveStandIn(t *testing.T, codeScreen string) (string, *mailbox) {
	t.Helper()
	mail := &mailbox{}
	handler := func(ssh.Session) (tea.Model, []tea.ProgramOption) {
		return standIn{mail: mail, codeScreen: codeScreen}, nil
	}
	srv, err := wish.NewServer(
		wish.WithHostKeyPath(filepath.Join(t.TempDir(), "hostkey")),
		wish.WithMiddleware(bm.Middleware(handler), activeterm.Middleware()),
	)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ssh.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), mail
}

// standInScreens are the stand-in's markers.
var standInScreens = Screens{Email: "Email:", Code: "Code sent to", Verified: "Verified"}

func TestRunLogins(t *testing.T) {
	addr, mail := serveStandIn(t, "Code sent to ")
	const n = 12
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		Addr: addr, Sessions: n, Concurrency: 4, RunID: "t1", Screens: standInScreens,
		Codes: mail, Stats: Process{}, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := writeReport(t, rep)
	if rep.OK != n || rep.Failed != 0 || rep.Login.N != n || rep.FirstFrame.N != n {
		t.Fatalf("want %d verified logins:\n%s", n, out)
	}
	if !rep.Settled {
		t.Errorf("goroutines did not return to baseline:\n%s", out)
	}
	if rep.Throughput <= 0 || rep.Peak.Goroutines < rep.Before.Goroutines {
		t.Errorf("throughput or peak missing:\n%s", out)
	}
	if !strings.Contains(progress.String(), "12/12 sessions done, 0 failed") {
		t.Errorf("progress = %q", progress.String())
	}
}

func TestRunReportsFailures(t *testing.T) {
	// The code screen never says "Code sent to": every session must fail
	// in that phase, and the report must show what the screen said.
	addr, mail := serveStandIn(t, "Something broke for ")
	rep, err := Run(t.Context(), Config{
		Addr: addr, Sessions: 3, Concurrency: 3, RunID: "t2", Screens: standInScreens,
		Codes: mail, SessionTimeout: 300 * time.Millisecond, Stats: Process{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 0 || rep.Failed != 3 || len(rep.Failures) != 1 {
		t.Fatalf("report = %+v, want 3 failures of one kind", rep)
	}
	f := rep.Failures[0]
	if f.Reason != "code screen: timeout" || f.Count != 3 || !strings.Contains(f.Example, "Something broke for <address>") {
		t.Errorf("failure = %+v", f)
	}
	if !rep.Settled {
		t.Errorf("goroutines not back to baseline: before %d after %d", rep.Before.Goroutines, rep.After.Goroutines)
	}
}

func TestRunIdle(t *testing.T) {
	addr, _ := serveStandIn(t, "Code sent to ")
	const n = 8
	rep, err := Run(t.Context(), Config{
		Addr: addr, Sessions: n, Concurrency: 3, Hold: 200 * time.Millisecond, Screens: standInScreens, Stats: Process{},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := writeReport(t, rep)
	if rep.OK != n || rep.FirstFrame.N != n || rep.Login.N != 0 {
		t.Fatalf("want %d held sessions:\n%s", n, out)
	}
	// The stand-in has no timers: an idle screen must send nothing.
	if rep.HoldRx != 0 {
		t.Errorf("idle sessions received %d bytes", rep.HoldRx)
	}
	if rep.Peak.Goroutines <= rep.Before.Goroutines || !rep.Settled {
		t.Errorf("sessions not held, or goroutines not back to baseline:\n%s", out)
	}
	for _, want := range []string{"idle, held 200ms", "idle memory", "idle output 0.0 B/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestRunNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Run(t.Context(), Config{Addr: addr, Sessions: 2, Codes: &mailbox{}})
	if err == nil || !strings.Contains(err.Error(), "warm-up session failed: dial: ") {
		t.Fatalf("Run = %v, want a failed warm-up", err)
	}
	rep, err := Run(t.Context(), Config{Addr: addr, Sessions: 2, Codes: &mailbox{}, Warmup: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || len(rep.Failures) != 1 || !strings.HasPrefix(rep.Failures[0].Reason, "dial: ") {
		t.Errorf("report = %+v, want 2 dial failures", rep)
	}
}

// writeReport prints rep with runs of blanks collapsed, so that tests can
// look for phrases without depending on the column widths.
func writeReport(t *testing.T, rep Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := rep.Write(&b); err != nil {
		t.Fatal(err)
	}
	return blanks.ReplaceAllString(b.String(), " ")
}

var blanks = regexp.MustCompile(`[ \t]+`)
