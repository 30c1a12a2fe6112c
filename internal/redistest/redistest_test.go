package redistest

import (
	"context"
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
