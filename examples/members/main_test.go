package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/log/v2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/otplogin/otplogin/mail/devserver"
)

const waitTime = 10 * time.Second

// TestMembers runs the example and visits it over a real SSH client: a
// visitor who proves an address is greeted by it; one who leaves never
// sees the members screen.
func TestMembers(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	logs := &buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, l, filepath.Join(t.TempDir(), "host_key"), outbox, log.New(logs))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	t.Run("verified", func(t *testing.T) {
		const addr = "member@example.com"
		term := open(t, l.Addr().String())
		term.waitFor(t, "Email")
		term.typeText(t, addr+"\r")
		code := newestCode(t, outbox, addr)
		term.waitFor(t, "Check your email")
		term.typeText(t, code+"\r")
		term.waitFor(t, "Welcome, "+addr+".")
		term.typeText(t, "q")
		if status := term.wait(t); status != 0 {
			t.Errorf("exit status %d, want 0", status)
		}
	})
	t.Run("leaves", func(t *testing.T) {
		term := open(t, l.Addr().String())
		term.waitFor(t, "Email")
		term.typeText(t, "\x1b")
		if status := term.wait(t); status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
		if strings.Contains(term.out.String(), "Members only") {
			t.Error("an unverified visitor saw the members screen")
		}
	})
	if strings.Contains(logs.String(), "member@") || !strings.Contains(logs.String(), "m***@example.com") {
		t.Errorf("the log should name the member masked:\n%s", logs)
	}
}

func newestCode(t *testing.T, outbox, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTime)
	defer cancel()
	code, err := devserver.NewestCode(ctx, outbox, addr, true)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// buffer is a bytes.Buffer for several goroutines.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// term is an SSH session with a PTY, as ssh -t opens one.
type term struct {
	sess *gossh.Session
	in   interface{ Write([]byte) (int, error) }
	out  *buffer
}

func open(t *testing.T, addr string) *term {
	t.Helper()
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "visitor",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         waitTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	tm := &term{sess: sess, out: &buffer{}}
	sess.Stdout, sess.Stderr = tm.out, tm.out
	if tm.in, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return tm
}

func (tm *term) typeText(t *testing.T, s string) {
	t.Helper()
	if _, err := tm.in.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (tm *term) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !strings.Contains(tm.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%q", want, tm.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait returns the session's exit status, -1 for none.
func (tm *term) wait(t *testing.T) int {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- tm.sess.Wait() }()
	select {
	case err := <-errc:
		var exit *gossh.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &exit):
			return exit.ExitStatus()
		}
		return -1
	case <-time.After(waitTime):
		t.Fatal("session did not end")
		return -1
	}
}
