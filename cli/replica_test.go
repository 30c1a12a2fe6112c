package cli

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/redistest"
)

// startServe runs `otplogin serve` on a free loopback port and returns the
// port it listens on. The process is stopped with SIGTERM when the test ends.
func startServe(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); cmd.ProcessState.ExitCode() != ExitInterrupted {
			t.Errorf("otplogin serve did not stop cleanly on SIGINT: %v", err)
		}
	})
	listening := regexp.MustCompile(`listening.* listen=(\S+)`)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // keep the pipe drained
	}()
	select {
	case addr := <-addrc:
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return port
	case <-time.After(15 * time.Second):
		t.Fatal("otplogin serve did not start listening")
		return ""
	}
}

// sshCommand connects the OpenSSH client to a local port as a visitor would.
func sshCommand(port string) string {
	return "ssh -F /dev/null -p " + port + " -o BatchMode=yes -o StrictHostKeyChecking=no" +
		" -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR visitor@localhost"
}

// TestReplicasShareCodes runs two `otplogin serve` replicas on one Redis, as
// the README shows: a code requested on one verifies on the other, once.
func TestReplicasShareCodes(t *testing.T) {
	needTool(t, "ssh")
	needTool(t, "tmux")
	rdb := redistest.Start(t)
	dir := t.TempDir()
	outbox := filepath.Join(dir, "outbox")
	env := []string{
		"OTPLOGIN_SECRET=" + strings.Repeat("ab", 32),
		"OTPLOGIN_REDIS_URL=" + rdb.URL(),
		"OTPLOGIN_HOST_KEY=" + filepath.Join(dir, "host_key"),
		"OTPLOGIN_OUTBOX=" + outbox,
	}
	portA := startServe(t, binary, env)
	portB := startServe(t, binary, env)
	const addr = "carol@example.com"

	a := startTmux(t, 80, 24, nil, sshCommand(portA), false)
	a.waitScreen("Email")
	a.typeText(addr)
	a.press("Enter")
	a.waitScreen("We sent a code")
	code := codeFor(t, outbox, addr)

	// Replica B knows the code is on its way: no second mail, straight to
	// the code screen.
	b := startTmux(t, 80, 24, nil, sshCommand(portB), false)
	b.waitScreen("Email")
	b.typeText(addr)
	b.press("Enter")
	b.waitScreen("already sent")
	if files, _ := filepath.Glob(filepath.Join(outbox, "*-"+addr+".eml")); len(files) != 1 {
		t.Fatalf("%d messages for %s, want 1", len(files), addr)
	}
	b.typeText(code)
	b.press("Enter")
	b.waitScreen("Verified")

	// The code is used up, on every replica.
	a.typeText(code)
	a.press("Enter")
	scr := a.waitScreen("No code is waiting for this address")
	if strings.Contains(scr, "Verified") {
		t.Fatalf("a used code verified again on the other replica:\n%s", scr)
	}
}
