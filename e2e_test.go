package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/mail"
)

// These tests run the real binary in a real terminal (tmux), as a person
// would: type an address, read the code from the dev outbox, type it.

// buildBinary builds otplogin once per test into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "otplogin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// needTool skips when a tool is missing on a developer's machine; in CI
// (which installs it) a missing tool fails the test.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
}

// tmuxSession is one detached tmux session on a private server socket.
type tmuxSession struct {
	t      *testing.T
	socket string
	dir    string // holds stdout and the exit status of the command
}

// startTmux runs command in a new w x h tmux session and records its exit
// status in dir/status. With captureStdout its stdout goes to dir/stdout
// instead of the terminal.
func startTmux(t *testing.T, w, h int, env []string, command string, captureStdout bool) *tmuxSession {
	t.Helper()
	needTool(t, "tmux")
	s := &tmuxSession{t: t, socket: "otplogin-test-" + filepath.Base(t.TempDir()), dir: t.TempDir()}
	if captureStdout {
		command += " > " + filepath.Join(s.dir, "stdout")
	}
	script := fmt.Sprintf("%s %s; echo $? > %s/status; sleep 600", strings.Join(env, " "), command, s.dir)
	s.tmux("new-session", "-d", "-s", "main", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh", "-c", script)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen is what the terminal shows now.
func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-p", "-t", "main") }

// send types keys; literal text is sent with -l so it is not read as key names.
func (s *tmuxSession) typeText(text string) { s.tmux("send-keys", "-t", "main", "-l", text) }
func (s *tmuxSession) press(key string)     { s.tmux("send-keys", "-t", "main", key) }

// waitScreen polls until the screen contains want; the bound only keeps a
// broken build from hanging the suite.
func (s *tmuxSession) waitScreen(want string) string {
	s.t.Helper()
	var scr string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if scr = s.screen(); strings.Contains(scr, want) {
			return scr
		}
	}
	s.t.Fatalf("screen never showed %q; it shows:\n%s", want, scr)
	return ""
}

// waitExit waits for the command to end and returns its status and stdout.
func (s *tmuxSession) waitExit() (status, stdout string) {
	s.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(s.dir, "status")); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			out, _ := os.ReadFile(filepath.Join(s.dir, "stdout"))
			return strings.TrimSpace(string(b)), string(out)
		}
	}
	s.t.Fatalf("otplogin did not exit; screen:\n%s", s.screen())
	return "", ""
}

// codeFor reads the newest code mailed to addr from the dev outbox.
func codeFor(t *testing.T, outbox, addr string) string {
	t.Helper()
	var matches []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if matches, _ = filepath.Glob(filepath.Join(outbox, "*-"+addr+".eml")); len(matches) > 0 {
			break
		}
	}
	if len(matches) == 0 {
		t.Fatalf("no message for %s in %s", addr, outbox)
	}
	raw, err := os.ReadFile(matches[len(matches)-1]) // names sort by time
	if err != nil {
		t.Fatal(err)
	}
	code, err := mail.CodeFromMessage(raw)
	if err != nil {
		t.Fatalf("code from %s: %v", matches[len(matches)-1], err)
	}
	return code
}

// assertFits fails when a screen line is wider than the terminal.
func assertFits(t *testing.T, screen string, width int) {
	t.Helper()
	for _, line := range strings.Split(screen, "\n") {
		if w := ansi.StringWidth(line); w > width {
			t.Errorf("line %q is %d cells wide, terminal is %d", line, w, width)
		}
	}
}

func TestBinaryLoginInTmux(t *testing.T) {
	bin := buildBinary(t)
	outbox := filepath.Join(t.TempDir(), "outbox")
	const addr = "alice@example.com"
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox}, bin, true)

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

func TestBinaryCancelInTmux(t *testing.T) {
	bin := buildBinary(t)
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + filepath.Join(t.TempDir(), "outbox")}, bin, true)
	s.waitScreen("Email")
	s.typeText("bob@example.com")
	s.press("Escape")
	status, stdout := s.waitExit()
	if status != "1" || stdout != "" {
		t.Fatalf("cancel: status %s, stdout %q; want 1 and nothing", status, stdout)
	}
}

func TestBinaryConfigErrors(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string // in the one line on stderr
	}{
		{"bad port", nil, []string{"OTPLOGIN_SMTP_HOST=smtp.example.com", "OTPLOGIN_SMTP_PORT=abc"}, "OTPLOGIN_SMTP_PORT"},
		{"bad url flag", []string{"--smtp-url", "ftp://x"}, nil, "--smtp-url (OTPLOGIN_SMTP_URL)"},
		{"password never echoed", []string{"--smtp-url", "smtp://u:hunter2@:587"}, nil, "--smtp-url"},
		{"unknown flag", []string{"--bogus"}, nil, "flag provided but not defined: -bogus"},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"short secret", []string{"--redis-url", "redis://127.0.0.1:1"}, []string{"OTPLOGIN_SECRET=short"}, "OTPLOGIN_SECRET"},
		{"missing secret", []string{"--redis-url", "redis://127.0.0.1:1"}, nil, "OTPLOGIN_SECRET: required"},
		{"serve: bad session cap", []string{"serve", "--max-sessions", "0"}, nil, "--max-sessions (OTPLOGIN_MAX_SESSIONS)"},
		{"serve: bad proxy list", []string{"serve"}, []string{"OTPLOGIN_TRUSTED_PROXIES=10.0.0.0/8, nope"}, `OTPLOGIN_TRUSTED_PROXIES: "nope"`},
		{"serve: bad log format", []string{"serve", "--log-format", "xml"}, nil, "--log-format (OTPLOGIN_LOG_FORMAT)"},
		{"serve: public debug endpoint", []string{"serve", "--debug-addr", ":6060"}, nil, "--debug-addr (OTPLOGIN_DEBUG_ADDR)"},
		{"serve: corrupt host key", []string{"serve", "--host-key", "e2e_test.go"}, nil, "e2e_test.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != exitConfigError {
				t.Fatalf("err = %v, want exit status %d; stderr:\n%s", err, exitConfigError, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to name %q", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr leaks the password: %q", stderr.String())
			}
		})
	}
}
