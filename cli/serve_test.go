package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/leakcheck"
)

// TestServeStopsCleanly runs serve with its debug and operator endpoints
// and stops it once all listen, as SIGTERM would: it exits 143 and leaves
// no goroutine behind.
// With the dev mail server, listening beyond loopback takes
// --dev-mail-public.
func TestServeStopsCleanly(t *testing.T) {
	for _, listen := range [][]string{
		{"--listen", "127.0.0.1:0"},
		{"--listen", "0.0.0.0:0", "--dev-mail-public"},
	} {
		t.Run(listen[1], func(t *testing.T) { testServeStopsCleanly(t, listen) })
	}
}

func testServeStopsCleanly(t *testing.T, listen []string) {
	leakcheck.Check(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var stdout bytes.Buffer
	var stderr syncBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- Run(ctx, append([]string{"serve", "--debug-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--outbox", filepath.Join(dir, "outbox"), "--host-key", filepath.Join(dir, "host_key"), "--log-level", "debug"}, listen...),
			IO{&stdout, &stderr, env(nil)})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening") || !strings.Contains(stderr.String(), `msg="debug endpoint" listen=127.0.0.1:`) ||
		!strings.Contains(stderr.String(), `msg="operator endpoint" listen=127.0.0.1:`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start both listeners; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel(signalled{syscall.SIGTERM})
	select {
	case code := <-codec:
		if code != ExitTerminated {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitTerminated, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if !strings.Contains(stderr.String(), "stopped") || stdout.Len() != 0 {
		t.Errorf("stderr = %q, stdout %q; want the stopped line and nothing on stdout", stderr.String(), stdout.String())
	}
}
