package cli

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/otplogin/otplogin/mail/devserver"
)

// TestServeHidesDevMode logs in through the real binary's serve over SSH,
// in dev mode: the operator's log says DEV MODE and names the outbox, and
// the visitor sees neither, whatever the screen. (Wiring serve's sessions
// like the local app's would show both.)
func TestServeHidesDevMode(t *testing.T) {
	dir := t.TempDir()
	_, log := startServeProcess(t, dir)
	outbox := filepath.Join(dir, "outbox")
	if !strings.Contains(log.String(), "DEV MODE") || !strings.Contains(log.String(), outbox) {
		t.Fatalf("the operator's log does not say DEV MODE and the outbox:\n%s", log)
	}
	addr := regexp.MustCompile(`listen=(127\.0\.0\.1:\d+)`).FindStringSubmatch(log.String())
	if addr == nil {
		t.Fatalf("no listen address in the log:\n%s", log)
	}
	client, err := gossh.Dial("tcp", addr[1], &gossh.ClientConfig{
		User: "visitor", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	screen := &syncBuffer{}
	sess.Stdout, sess.Stderr = screen, screen
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}

	const address = "visitor@example.com"
	screen.waitFor(t, "Email")
	_, _ = stdin.Write([]byte(address + "\r"))
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	code, err := devserver.NewestCode(ctx, outbox, address, true)
	if err != nil {
		t.Fatal(err)
	}
	screen.waitFor(t, "Check your email")
	_, _ = stdin.Write([]byte(code + "\r"))
	screen.waitFor(t, "Verified "+address)
	_, _ = stdin.Write([]byte("\r"))
	if err := sess.Wait(); err != nil {
		t.Errorf("the session ended with %v, want status 0", err)
	}
	for _, hidden := range []string{"DEV MODE", outbox, "outbox"} {
		if strings.Contains(screen.String(), hidden) {
			t.Errorf("the visitor was shown %q:\n%q", hidden, screen)
		}
	}
}
