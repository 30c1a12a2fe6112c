package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/leakcheck"
)

// TestServeSettingErrors checks that every bad serve setting stops start-up
// with exit status 2 and one line naming the flag that set it.
func TestServeSettingErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	notAKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notAKey, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"conn rate NaN", []string{"--conn-rate", "NaN"}, "--conn-rate (OTPLOGIN_CONN_RATE)"},
		{"conn rate Inf", []string{"--conn-rate", "+Inf"}, "--conn-rate (OTPLOGIN_CONN_RATE)"},
		{"conn rate zero", []string{"--conn-rate", "0"}, "--conn-rate (OTPLOGIN_CONN_RATE)"},
		{"session cap overflows", []string{"--max-sessions", "9223372036854775807"}, "--max-sessions (OTPLOGIN_MAX_SESSIONS)"},
		{"client session cap overflows", []string{"--max-sessions-per-client", "9223372036854775807"}, "--max-sessions-per-client (OTPLOGIN_MAX_SESSIONS_PER_CLIENT)"},
		{"client codes above the otp bound", []string{"--client-codes", "200000"}, "--client-codes (OTPLOGIN_CLIENT_CODES)"},
		{"unusable host key", []string{"--host-key", notAKey}, "--host-key (OTPLOGIN_HOST_KEY): host key " + notAKey},
		{"listen address without port", []string{"--listen", "127.0.0.1"}, "--listen (OTPLOGIN_LISTEN)"},
		{"listen address in use", []string{"--listen", busy.Addr().String()}, "--listen (OTPLOGIN_LISTEN)"},
		{"bad trusted proxy", []string{"--trusted-proxies", "10.0.0.0/8,lb.example"}, "--trusted-proxies (OTPLOGIN_TRUSTED_PROXIES)"},
		{"debug endpoint not on loopback", []string{"--debug-addr", "0.0.0.0:6060"}, "--debug-addr (OTPLOGIN_DEBUG_ADDR)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--outbox", filepath.Join(dir, "outbox"),
				"--host-key", filepath.Join(dir, "host_key")}, tc.args...)
			// A setting that is wrongly accepted starts the server: stop it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr, env(nil))
			if code != exitConfigError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitConfigError, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to name %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestServeStopsCleanly runs serve with its debug endpoint and cancels it
// once both listen: it exits 0 and leaves no goroutine behind.
func TestServeStopsCleanly(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	var stderr lockedBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0",
			"--outbox", filepath.Join(dir, "outbox"), "--host-key", filepath.Join(dir, "host_key")},
			&stdout, &stderr, env(nil))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening") || !strings.Contains(stderr.String(), `msg="debug endpoint" addr=127.0.0.1:`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start both listeners; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-codec:
		if code != exitOK {
			t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("stderr = %q, want the stopped line", stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer the server's log writer and the test may
// use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
