package serve

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenSSHUnderTmux logs in with the real OpenSSH client in a real
// terminal (tmux), the way a visitor would.
func TestOpenSSHUnderTmux(t *testing.T) {
	for _, bin := range []string{"tmux", "ssh"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", bin, err)
			}
			t.Skipf("%s not installed", bin)
		}
	}
	ls := startLoginServer(t, nil)
	_, port, err := net.SplitHostPort(ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*waitTime)
	defer cancel()
	socket := fmt.Sprintf("otplogin-serve-test-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// BatchMode: ssh fails instead of prompting, so a password prompt
	// would fail the test rather than hang it. The shell keeps the pane
	// open to show ssh's exit status.
	sshCmd := "ssh -F /dev/null -p " + port + " -o BatchMode=yes -o StrictHostKeyChecking=no" +
		" -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR visitor@localhost" +
		"; echo ssh-exit=$?; sleep 60"
	tmux("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", sshCmd)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", socket, "kill-server").Run() })
	waitPane := func(want string) {
		t.Helper()
		deadline := time.Now().Add(waitTime)
		for {
			pane := tmux("capture-pane", "-p", "-t", "e2e")
			if strings.Contains(pane, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %q on screen:\n%s", want, pane)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	keys := func(k ...string) { tmux(append([]string{"send-keys", "-t", "e2e"}, k...)...) }

	waitPane("Email")
	keys("-l", "bob@example.com")
	keys("Enter")
	code := ls.code(t, "bob@example.com")
	waitPane("Check your email") // the code screen: the sending screen ignores keys
	keys("-l", code)
	keys("Enter")
	waitPane("Verified bob@example.com")
	keys("Enter")
	waitPane("ssh-exit=0")
	waitFor(t, ls.logs, "outcome=verified")
}
