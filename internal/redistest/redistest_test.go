package redistest

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

func TestStartRestartStop(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, s.Addr(), nil); err != nil {
		t.Fatalf("PING after Start: %v\n%s", err, s.Log())
	}
	s.Restart()
	if err := ping(ctx, s.Addr(), nil); err != nil {
		t.Fatalf("PING after Restart: %v\n%s", err, s.Log())
	}
	s.Stop()
	if err := ping(ctx, s.Addr(), nil); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // idempotent
}

func TestFreezeThaw(t *testing.T) {
	s := Start(t)
	s.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ping(ctx, s.Addr(), nil); err == nil {
		t.Fatal("a frozen server answered PING")
	}
	s.Thaw()
	if err := ping(context.Background(), s.Addr(), nil); err != nil {
		t.Fatalf("PING after Thaw: %v", err)
	}
	s.Freeze()
	s.Stop() // stops a frozen server too
}

func TestTLS(t *testing.T) {
	ca := NewCA(t)
	s := StartWith(t, Config{TLS: ca})
	if !strings.HasPrefix(s.URL(), "rediss://") {
		t.Errorf("URL = %q, want rediss://", s.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, s.Addr(), ca.ClientConfig()); err != nil {
		t.Fatalf("PING over TLS trusting the CA: %v", err)
	}
	if err := ping(ctx, s.Addr(), &tls.Config{}); err == nil {
		t.Fatal("PING over TLS trusting only the system roots succeeded")
	}
	if err := ping(ctx, s.Addr(), nil); err == nil {
		t.Fatal("PING in cleartext to a TLS-only server succeeded")
	}
}
