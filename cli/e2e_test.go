package cli

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/syncbuf"

	"github.com/creack/pty"
)

// These tests run the real binary in a real terminal (tmux or a pty), as a
// person would: type an address, read the code from the dev outbox, type
// it; or leave with Esc, Ctrl+C or a signal.

func TestBinaryLoginInTmux(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	const addr = "alice@example.com"
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox}, binary, true)

	s.waitScreen("DEV MODE")
	s.typeText(addr)
	s.press("Enter")
	s.waitScreen("We sent a code to " + addr)
	code := codeFor(t, outbox, addr)

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	s.typeText(wrong)
	s.press("Enter")
	s.waitScreen("4 attempts left")

	// A terminal shrunk mid-flow still shows the flow, within its width.
	s.tmux("resize-window", "-t", "main", "-x", "40", "-y", "10")
	scr := s.waitScreen("Code")
	assertFits(t, scr, 40)

	s.typeText(code[:3] + " " + code[3:])
	s.press("Enter")
	status, stdout := s.waitExit()
	if status != "0" {
		t.Fatalf("exit status %s, want 0; screen:\n%s", status, s.screen())
	}
	if stdout != addr+"\n" {
		t.Fatalf("stdout = %q, want only the address", stdout)
	}
	s.waitScreen("Verified " + addr)
}

// TestBinaryLeaveInTmux checks the statuses of leaving without a verified
// address: Esc is "no" (1), Ctrl+C is an interrupt (130), as shells report
// one. Neither prints anything on stdout or stderr.
func TestBinaryLeaveInTmux(t *testing.T) {
	for _, tc := range []struct {
		key, status string
	}{
		{"Escape", "1"},
		{"C-c", "130"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			stderr := filepath.Join(dir, "stderr")
			s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + filepath.Join(dir, "outbox")}, binary+" 2> "+stderr, true)
			s.waitScreen("Email")
			s.typeText("bob@example.com")
			s.press(tc.key)
			status, stdout := s.waitExit()
			if status != tc.status || stdout != "" {
				t.Fatalf("%s: status %s, stdout %q; want %s and nothing", tc.key, status, stdout, tc.status)
			}
			if b, err := os.ReadFile(stderr); err != nil || len(b) != 0 {
				t.Errorf("%s: stderr %q (%v), want nothing", tc.key, b, err)
			}
		})
	}
}

// TestCodeTTLInTmux checks that --code-ttl reaches the screen's countdown
// and the email (the store takes it from the same otp.Config).
func TestCodeTTLInTmux(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	const addr = "dora@example.com"
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox}, binary+" --code-ttl 2m", true)
	s.waitScreen("Email")
	s.typeText(addr)
	s.press("Enter")
	scr := s.waitScreen("We sent a code to " + addr)
	if !regexp.MustCompile(`Expires in (2:00|1:[0-5]\d)`).MatchString(scr) {
		t.Errorf("screen does not count down from 2 minutes:\n%s", scr)
	}
	if msg := messageFor(t, outbox, addr); !bytes.Contains(msg, []byte("2 minutes")) {
		t.Errorf("the email does not say 2 minutes:\n%s", msg)
	}
	s.press("Escape") // back to the address
	s.waitScreen("esc quit")
	s.press("Escape")
	if status, _ := s.waitExit(); status != "1" {
		t.Errorf("status %s, want 1", status)
	}
}

// TestBinarySignals sends SIGINT and SIGTERM to the login (in a pty) and to
// serve: each exits by itself, with 130 or 143, rather than dying by the
// signal, and prints nothing on stdout but what a terminal shows.
func TestBinarySignals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		serve  bool
		sig    syscall.Signal
		status int
	}{
		{"login SIGINT", false, syscall.SIGINT, ExitInterrupted},
		{"login SIGTERM", false, syscall.SIGTERM, ExitTerminated},
		{"serve SIGINT", true, syscall.SIGINT, ExitInterrupted},
		{"serve SIGTERM", true, syscall.SIGTERM, ExitTerminated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var cmd *exec.Cmd
			var out *syncBuffer
			if tc.serve {
				cmd, out = startServeProcess(t, dir)
			} else {
				cmd, out = startLoginInPty(t, dir)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() || cmd.ProcessState.ExitCode() != tc.status {
				t.Fatalf("%v: %v (killed by a signal: %v), want exit status %d; output:\n%s", tc.sig, err, ws.Signaled(), tc.status, out.String())
			}
			if tc.serve && !strings.Contains(out.String(), "stopped") {
				t.Errorf("serve did not stop gracefully:\n%s", out.String())
			}
		})
	}
}

// startLoginInPty starts the local login in a pty and waits for its email
// screen. The output holds everything the terminal got.
func startLoginInPty(t *testing.T, dir string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, "--outbox", filepath.Join(dir, "outbox"))
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TERM=xterm-256color"}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); tty.Close() })
	out := &syncBuffer{}
	go func() { _, _ = io.Copy(out, tty) }()
	out.waitFor(t, "Email")
	return cmd, out
}

// startServeProcess starts serve on a free port and waits until it listens.
// The output holds stdout and stderr.
func startServeProcess(t *testing.T, dir string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--outbox", filepath.Join(dir, "outbox"),
		"--host-key", filepath.Join(dir, "host_key"))
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	out.waitFor(t, "listening")
	return cmd, out
}

// syncBuffer is a buffer one goroutine fills while the test reads it.
type syncBuffer struct{ syncbuf.Buffer }

// waitFor polls until the output holds want; the bound only keeps a broken
// build from hanging the suite.
func (b *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(b.String(), want) {
			return
		}
	}
	t.Fatalf("never saw %q in:\n%s", want, b.String())
}

// TestAccessibleInTmux logs in with --accessible by typing lines, reading
// the code with the outbox command, as the README's first run does: plain
// sentences, no alternate screen, the same exit status and stdout.
func TestAccessibleInTmux(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	const addr = "erin@example.com"
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox, "ACCESSIBLE=1"}, binary, true)
	s.waitScreen("To leave, type quit.")
	s.typeText(addr)
	s.press("Enter")
	s.waitScreen("We sent a code to " + addr + ".")

	out, err := exec.Command(binary, "outbox", "--wait", "--outbox", outbox, strings.ToUpper(addr)).Output()
	if err != nil {
		t.Fatalf("otplogin outbox: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if code != codeFor(t, outbox, addr) {
		t.Fatalf("otplogin outbox printed %q, want the mailed code", out)
	}
	s.typeText(code)
	s.press("Enter")
	status, stdout := s.waitExit()
	if status != "0" || stdout != addr+"\n" {
		t.Fatalf("status %s, stdout %q; want 0 and the address; screen:\n%s", status, stdout, s.screen())
	}
	scr := s.waitScreen("Verified " + addr + ".")
	// Without an alternate screen, the whole conversation stays.
	for _, line := range []string{"Prove you own an email address.", "Email: " + addr, "Code: " + code} {
		if !strings.Contains(scr, line) {
			t.Errorf("the terminal lost %q:\n%s", line, scr)
		}
	}
}

// TestOutboxCommand checks the outbox command's statuses: no message is 1
// with one line on stderr, a bad address is 2.
func TestOutboxCommand(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, []string{"OTPLOGIN_OUTBOX=" + dir}, "outbox", "nobody@example.com")
	if r.status != ExitFailed || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("no message: status %d, stdout %q, stderr %q; want 1, nothing and one line", r.status, r.stdout, r.stderr)
	}
	assertOneLine(t, runBinary(t, nil, "outbox", "not-an-address"), `otplogin: "not-an-address" is not an email address`)
	assertOneLine(t, runBinary(t, nil, "outbox"), "otplogin: outbox takes one address")
}
