package redisstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
)

// TestTLSPrivateCA: a rediss:// server whose certificate a private CA
// issued is trusted through CAFile, and only through it.
func TestTLSPrivateCA(t *testing.T) {
	ca := redistest.NewCA(t)
	srv := redistest.StartWith(t, redistest.Config{TLS: ca})
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("trusted with CAFile", func(t *testing.T) {
		s := openURL(t, srv.URL(), Options{CAFile: ca.CertFile()})
		issue(t, s, "tls@example.com", "c", base)
		if _, err := s.Attempt(testCtx(t), "tls@example.com", "c", base, testLimits); err != nil {
			t.Fatalf("Attempt over TLS: %v", err)
		}
	})
	tests := []struct {
		name, caFile, says string
		unavailable        bool
	}{
		{"system roots only", "", "certificate", true},
		{"CA file missing", filepath.Join(t.TempDir(), "none.pem"), "CA file", false},
		{"CA file not PEM", notPEM, "holds no PEM certificate", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(testCtx(t), srv.URL(), Options{Secret: sharedKey, CAFile: tt.caFile})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.says) || errors.Is(err, otp.ErrUnavailable) != tt.unavailable {
				t.Errorf("err = %v, want it to say %q and ErrUnavailable %v", err, tt.says, tt.unavailable)
			}
		})
	}
}

// TestCleartext: redis:// goes to loopback only, unless the operator opts
// in; the rule holds for every address dialed, including those a Cluster
// or a Sentinel names, which no URL check sees.
func TestCleartext(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':'):]

	t.Run("dialer", func(t *testing.T) {
		tests := []struct {
			addr    string
			refused bool
		}{
			{srv.Addr(), false},
			{"localhost" + port, false},
			{"192.0.2.10:6379", true},
			{"[2001:db8::1]:6379", true},
			{"redis.example:6379", true}, // a name that might resolve anywhere
		}
		dial := dialer(nil, true, time.Second)
		for _, tt := range tests {
			conn, err := dial(ctx, "tcp", tt.addr)
			if conn != nil {
				conn.Close()
			}
			if refused := err != nil && strings.Contains(err.Error(), "refusing cleartext"); refused != tt.refused {
				t.Errorf("dial %s: %v, want refused %v", tt.addr, err, tt.refused)
			}
		}
	})

	t.Run("opted in", func(t *testing.T) {
		// Nothing answers there: the point is that Open dials at all.
		s, err := Open(ctx, "redis://192.0.2.10:6379/0", Options{Secret: sharedKey, AllowCleartext: true, Timeout: 200 * time.Millisecond})
		if err == nil {
			s.Close()
			t.Fatal("Open reached a server at a documentation address")
		}
		if !errors.Is(err, otp.ErrUnavailable) || strings.Contains(err.Error(), "loopback") {
			t.Errorf("Open with AllowCleartext: %v, want a dial failure", err)
		}
	})
}

// TestPrefixIsAHashTag: braces in the prefix would change the keys' hash
// tag, and with it the Cluster slot scripts rely on.
func TestPrefixIsAHashTag(t *testing.T) {
	srv := redistest.Start(t)
	for _, p := range []string{"a{b}:", "}x:", "{"} {
		s, err := Open(testCtx(t), srv.URL(), Options{Secret: sharedKey, Prefix: p})
		if err == nil {
			s.Close()
			t.Errorf("Open with prefix %q succeeded", p)
		}
	}
}

// TestEvictionPolicy: Open refuses a server that may evict keys, naming
// the policy, and warns when it cannot read it.
func TestEvictionPolicy(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		refused string // the policy named in the error; "" for accepted
		warns   bool
	}{
		{"noeviction", []string{"--maxmemory-policy", "noeviction"}, "", false},
		{"allkeys-lru", []string{"--maxmemory-policy", "allkeys-lru"}, "allkeys-lru", false},
		// Every key of ours has a TTL, so volatile-* evicts them too.
		{"volatile-ttl", []string{"--maxmemory-policy", "volatile-ttl"}, "volatile-ttl", false},
		// Managed Redis often renames CONFIG away.
		{"CONFIG renamed", []string{"--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", ""}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.StartWith(t, redistest.Config{Args: tt.args})
			var logs bytes.Buffer
			s, err := Open(testCtx(t), srv.URL(), Options{Secret: sharedKey, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				defer s.Close()
			}
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), "maxmemory-policy "+tt.refused) || errors.Is(err, otp.ErrUnavailable)):
				t.Fatalf("Open: %v, want a refusal naming maxmemory-policy %s", err, tt.refused)
			}
			if warned := strings.Contains(logs.String(), "cannot read maxmemory-policy"); warned != tt.warns {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.warns, logs.String())
			}
		})
	}
}

// TestEvictionPolicyCluster: every Cluster node is checked, not only the
// one Open happens to ask.
func TestEvictionPolicyCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	last := c.Nodes[len(c.Nodes)-1]
	rdb := redis.NewClient(&redis.Options{Addr: last.Addr()})
	defer rdb.Close()
	if err := rdb.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-random").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(testCtx(t), c.URL(), Options{Secret: sharedKey})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with an evicting node")
	}
	if !strings.Contains(err.Error(), last.Addr()) || !strings.Contains(err.Error(), "allkeys-random") {
		t.Errorf("err = %v, want it to name %s and allkeys-random", err, last.Addr())
	}
}
