package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestHostChecks(t *testing.T) {
	for _, tc := range []struct {
		host              string
		loopback, address bool
	}{
		{"localhost", true, true},
		{"LOCALHOST.:9090", true, true},
		{"127.0.0.1:9090", true, true},
		{"[::1]", true, true},
		{"[::ffff:127.0.0.1]:9090", true, true},
		{"10.1.2.3:9090", false, true},
		{"[2001:db8::1]:9090", false, true},
		{"0.0.0.0:9090", false, true},
		{"[fe80::1%25eth0]:9090", false, false},
		{"evil.example:9090", false, false},
		{"localhost.evil.example", false, false},
		{"evil.localhost", false, false},
		{"", false, false},
	} {
		if got := HostIsLoopback(tc.host); got != tc.loopback {
			t.Errorf("HostIsLoopback(%q) = %v, want %v", tc.host, got, tc.loopback)
		}
		if got := HostIsAddress(tc.host); got != tc.address {
			t.Errorf("HostIsAddress(%q) = %v, want %v", tc.host, got, tc.address)
		}
	}
}

// TestServe: it answers until its context ends, then returns nil and
// stops listening.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }))
	}()
	res, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("got %q", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("still listening after Serve returned")
	}
}
