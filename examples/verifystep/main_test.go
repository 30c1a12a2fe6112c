package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/mail/devserver"
)

const waitTime = 10 * time.Second

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

func waitScreen(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return strings.Contains(ansi.Strip(string(b)), text)
	}, teatest.WithDuration(waitTime))
}

// TestSignUp runs the form in a real tea.Program: a name, the embedded
// login with a code read from the dev outbox, and the summary, which the
// form draws after the login reported.
func TestSignUp(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	svc, dir, stop, err := devService(t.Context(), outbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tm := teatest.NewTestModel(t, newForm(svc, dir), teatest.WithInitialTermSize(70, 20))
	waitScreen(t, tm, "What should we call you?")
	tm.Type("Ada")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, tm, "Prove you own an email address")
	const addr = "ada@example.com"
	tm.Type(addr)
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	code := newestCode(t, outbox, addr)
	waitScreen(t, tm, "We sent a code to")
	tm.Type(code)
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, tm, "Signed up Ada <ada@example.com>.")
	tm.Send(tea.KeyPressMsg{Code: 'x', Text: "x"})
	f := tm.FinalModel(t, teatest.WithFinalTimeout(waitTime)).(*form)
	if !f.login.Verified || f.login.Address != addr || f.name.Value() != "Ada" {
		t.Errorf("form ended with %+v, name %q", f.login, f.name.Value())
	}
}

// TestLeaveTheLoginStep: Esc in the login step is the login's (cancel),
// and the form goes on to say nobody signed up.
func TestLeaveTheLoginStep(t *testing.T) {
	svc, dir, stop, err := devService(t.Context(), filepath.Join(t.TempDir(), "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tm := teatest.NewTestModel(t, newForm(svc, dir), teatest.WithInitialTermSize(70, 20))
	tm.Type("Bo")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, tm, "Prove you own an email address")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
	waitScreen(t, tm, "Not signed up")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	f := tm.FinalModel(t, teatest.WithFinalTimeout(waitTime)).(*form)
	if f.login.Verified || f.login.Outcome != "cancelled" {
		t.Errorf("form ended with %+v", f.login)
	}
}

// TestBinaryInTmux builds the example and signs up in a real terminal:
// the program prints the name and the address on stdout and exits 0.
func TestBinaryInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "verifystep")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	outbox := filepath.Join(dir, "outbox")
	socket := "verifystep-" + filepath.Base(dir)
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := bin + " -outbox " + outbox + " > " + dir + "/stdout; echo $? > " + dir + "/status; sleep 600"
	tmux("new-session", "-d", "-s", "main", "-x", "70", "-y", "20", "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", socket, "kill-server").Run() })
	waitFor := func(want string) {
		t.Helper()
		var screen string
		for deadline := time.Now().Add(waitTime); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if screen = tmux("capture-pane", "-p", "-t", "main"); strings.Contains(screen, want) {
				return
			}
		}
		t.Fatalf("screen never showed %q; it shows:\n%s", want, screen)
	}
	typeText := func(s string) { tmux("send-keys", "-t", "main", "-l", s) }

	waitFor("What should we call you?")
	typeText("Cy\r")
	waitFor("DEV MODE") // the login names the outbox
	const addr = "cy@example.com"
	typeText(addr + "\r")
	code := newestCode(t, outbox, addr)
	waitFor("We sent a code to " + addr)
	typeText(code + "\r")
	waitFor("Signed up Cy <" + addr + ">.")
	typeText("x")
	for deadline := time.Now().Add(waitTime); ; time.Sleep(50 * time.Millisecond) {
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err == nil && bytes.HasSuffix(status, []byte("\n")) {
			stdout, _ := os.ReadFile(filepath.Join(dir, "stdout"))
			if string(status) != "0\n" || string(stdout) != "Cy <"+addr+">\n" {
				t.Errorf("exit status %q, stdout %q", status, stdout)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not exit")
		}
	}
}
