package cli

import (
	"bytes"
	"context"
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

// binary is the real otplogin, built once by TestMain for the tests that
// run it as a user or a script would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "otplogin-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "otplogin")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/otplogin/otplogin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a getenv over a fixed map: Run never reads the process
// environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// result is what one run of the binary did.
type result struct {
	status         int
	stdout, stderr string
}

// runBinary runs the binary with args in a clean environment: a private
// HOME (so the outbox and host key land in a temp dir) and PATH, plus env.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	// A value wrongly accepted would start a server: the bound stops it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.status = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return r
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
	dir := t.TempDir()
	// The test's own temp folder (Test...123/004) names the socket:
	// parallel tests and each session of a test get their own tmux server.
	s := &tmuxSession{t: t, socket: "otplogin-test-" + filepath.Base(filepath.Dir(dir)) + "-" + filepath.Base(dir), dir: dir}
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

// typeText types literal text (-l, so it is not read as key names); press
// sends one key by name.
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

// messageFor reads the newest message mailed to addr from the dev outbox.
func messageFor(t *testing.T, outbox, addr string) []byte {
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
	return raw
}

// codeFor reads the newest code mailed to addr from the dev outbox.
func codeFor(t *testing.T, outbox, addr string) string {
	t.Helper()
	code, err := mail.CodeFromMessage(messageFor(t, outbox, addr))
	if err != nil {
		t.Fatalf("code for %s: %v", addr, err)
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
