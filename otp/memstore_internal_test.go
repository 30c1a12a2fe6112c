package otp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testPending(now time.Time, seed byte) Pending {
	h := make([]byte, 32)
	h[0] = seed
	return Pending{Hash: h, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), ResendAt: now.Add(time.Minute)}
}

// checkCount fails unless m.pending is the number of counted codes.
func checkCount(t *testing.T, m *MemoryStore) {
	t.Helper()
	n := 0
	for _, st := range m.addrs {
		if st.counted {
			n++
			if !st.hasCode() {
				t.Fatal("counted state without a code")
			}
		}
	}
	if n != m.pending {
		t.Fatalf("pending = %d, counted codes = %d", m.pending, n)
	}
	shares := 0
	for _, st := range m.addrs {
		if st.more != nil {
			if len(*st.more) == 0 {
				t.Fatal("an empty share list is kept")
			}
			shares += len(*st.more)
		}
	}
	if shares != m.shares {
		t.Fatalf("shares = %d, held outside own = %d", m.shares, shares)
	}
}

func TestMemoryStoreSweepsStaleState(t *testing.T) {
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.ClientIssues = 10_000
	lim.GlobalIssuesPerSecond = 10_000
	for i := range 5000 {
		if _, err := m.Issue(t.Context(), fmt.Sprintf("u%d@example.com", i), "c", testPending(t0, 1), t0, lim); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.addrs) != 5000 || m.pending != 5000 {
		t.Fatalf("%d addresses, %d pending", len(m.addrs), m.pending)
	}
	// Past every window and the retention, one more Issue sweeps the rest
	// and gives the emptied map's memory back.
	later := t0.Add(2 * time.Hour)
	if _, err := m.Issue(t.Context(), "new@example.com", "c2", testPending(later, 2), later, lim); err != nil {
		t.Fatal(err)
	}
	if len(m.addrs) != 1 || len(m.clients) != 1 || m.pending != 1 || m.peakAddrs != 1 {
		t.Fatalf("after sweep: %d addresses, %d clients, %d pending, peak %d", len(m.addrs), len(m.clients), m.pending, m.peakAddrs)
	}
	checkCount(t, m)
}

func TestMemoryStoreKeepsCountersAfterCode(t *testing.T) {
	// A used code goes, but the address's issue count must survive a sweep
	// until its window ends.
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.AddressIssues = 1
	p := testPending(t0, 1)
	if _, err := m.Issue(t.Context(), "a@example.com", "c", p, t0, lim); err != nil {
		t.Fatal(err)
	}
	if err := m.Discard(t.Context(), "a@example.com", p.Hash); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(30 * time.Minute) // triggers a sweep
	_, err := m.Issue(t.Context(), "a@example.com", "c", testPending(now, 2), now, lim)
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != LimitAddress {
		t.Fatalf("Issue = %v, want LimitAddress", err)
	}
}

func TestMemoryStoreBoundsTrackedEntries(t *testing.T) {
	// Discarded codes free their slot but leave counters behind; the number
	// of tracked addresses and clients is still capped.
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.MaxPending = 2 // so at most 16 entries
	lim.ClientIssues = 100
	for i := range 15 {
		p := testPending(t0, byte(i))
		addr := fmt.Sprintf("u%d@example.com", i)
		if _, err := m.Issue(t.Context(), addr, "c", p, t0, lim); err != nil {
			t.Fatalf("Issue %d: %v", i, err)
		}
		if err := m.Discard(t.Context(), addr, p.Hash); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.Issue(t.Context(), "one-too-many@example.com", "c", testPending(t0, 99), t0, lim)
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != LimitBusy || !le.RetryAt.After(t0) {
		t.Fatalf("Issue = %v, want LimitBusy", err)
	}
	// Once the counters' windows end, a sweep makes room.
	later := t0.Add(lim.IssueWindow)
	if _, err := m.Issue(t.Context(), "one-too-many@example.com", "c", testPending(later, 99), later, lim); err != nil {
		t.Fatalf("Issue after the window: %v", err)
	}
}

func TestMemoryStoreSweepsShares(t *testing.T) {
	// An IPv6 client holds three shares of each address it used; they go
	// when their windows end, and the address with them.
	m := NewMemoryStore()
	lim := DefaultLimits()
	p := testPending(t0, 1)
	if _, err := m.Issue(t.Context(), "a@example.com", "192.0.2.1", p, t0, lim); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attempt(t.Context(), "a@example.com", "2001:db8:1:2::/64", t0, lim); err != nil {
		t.Fatal(err)
	}
	st := m.addrs["a@example.com"]
	if st.own.key != "192.0.2.1" || st.more == nil || len(*st.more) != 3 || m.shares != 3 || len(m.clients) != 1 {
		t.Fatalf("own %q, %d more shares (%d counted), %d clients; want the IPv4 client inline, 3 more, 1 client", st.own.key, len(*st.more), m.shares, len(m.clients))
	}
	if ok, err := m.Consume(t.Context(), "a@example.com", "2001:db8:1:2::/64", p.Hash); !ok || err != nil {
		t.Fatalf("Consume = %v, %v", ok, err)
	}
	// The issue counters keep the IPv4 share until the window ends; the
	// refunded IPv6 shares hold nothing and go at the next sweep.
	now := t0.Add(sweepEvery)
	if _, err := m.Issue(t.Context(), "b@example.com", "c", testPending(now, 2), now, lim); err != nil {
		t.Fatal(err)
	}
	if st.more != nil || m.shares != 0 || st.own.key != "192.0.2.1" {
		t.Fatalf("after a sweep: more %v, %d shares, own %q", st.more, m.shares, st.own.key)
	}
	later := t0.Add(2 * time.Hour)
	if _, err := m.Issue(t.Context(), "c@example.com", "c", testPending(later, 3), later, lim); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.addrs["a@example.com"]; ok {
		t.Fatal("an address with no code and no live counter was kept")
	}
	checkCount(t, m)
}

func TestMemoryStoreBoundsShares(t *testing.T) {
	// Shares count against the bound on tracked entries like addresses
	// and clients do.
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.MaxPending = 2 // so at most 16 entries
	lim.ClientIssues, lim.ClientIssues56, lim.ClientIssues48 = 100, 100, 100
	// Each IPv6 /64 from its own /48: an address, 3 clients and 2 more
	// shares per Issue.
	for i := range 2 {
		addr := fmt.Sprintf("u%d@example.com", i)
		p := testPending(t0, byte(i))
		if _, err := m.Issue(t.Context(), addr, fmt.Sprintf("2001:db8:%x::/64", i), p, t0, lim); err != nil {
			t.Fatalf("Issue %d: %v", i, err)
		}
		if err := m.Discard(t.Context(), addr, p.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(m.addrs) + len(m.clients) + m.shares; got != 12 {
		t.Fatalf("%d entries, want 12", got)
	}
	_, err := m.Issue(t.Context(), "late@example.com", "2001:db8:ff::/64", testPending(t0, 9), t0, lim)
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != LimitBusy {
		t.Fatalf("Issue past the bound = %v, want LimitBusy", err)
	}
	if _, err := m.Issue(t.Context(), "late@example.com", "192.0.2.9", testPending(t0, 9), t0, lim); err != nil {
		t.Fatalf("Issue within the bound: %v", err)
	}
}

func TestMemoryStoreCapSweepKeepsIssuedCode(t *testing.T) {
	// At the global cap Issue sweeps, and that sweep may delete the idle
	// state of the very address being issued (no code, counters ended):
	// the new code must still land in the store.
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.MaxPending = 1
	issue := func(addr string, at time.Time, seed byte) error {
		_, err := m.Issue(t.Context(), addr, "c", testPending(at, seed), at, lim)
		return err
	}
	if err := issue("a@example.com", t0, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Discard(t.Context(), "a@example.com", testPending(t0, 1).Hash); err != nil {
		t.Fatal(err)
	}
	// b's code holds the only slot and expires just after a's counters end.
	if err := issue("b@example.com", t0.Add(time.Hour-5*time.Minute+time.Second), 2); err != nil {
		t.Fatal(err)
	}
	if err := issue("x@example.com", t0.Add(time.Hour-30*time.Second), 3); err == nil {
		t.Fatal("Issue at the cap succeeded")
	}
	now := t0.Add(time.Hour + 2*time.Second) // a sweep less than a minute ago
	if err := issue("a@example.com", now, 4); err != nil {
		t.Fatalf("Issue after b expired: %v", err)
	}
	if _, err := m.Attempt(t.Context(), "a@example.com", "c", now, lim); err != nil {
		t.Fatalf("Attempt on the code just issued: %v", err)
	}
	checkCount(t, m)
}

func TestMemoryStoreRejectsBadHash(t *testing.T) {
	m := NewMemoryStore()
	p := testPending(t0, 1)
	p.Hash = p.Hash[:31]
	if _, err := m.Issue(t.Context(), "a@example.com", "c", p, t0, DefaultLimits()); err == nil {
		t.Fatal("Issue accepted a 31-byte hash")
	}
}

// TestMemoryStoreRandomOps runs random operations at random times and
// checks after each that the pending count matches the codes held, and
// that the store never holds more unexpired codes than MaxPending.
func TestMemoryStoreRandomOps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	m := NewMemoryStore()
	lim := DefaultLimits()
	lim.MaxPending = 20
	lim.ClientIssues = 1000
	hashes := map[string][]byte{}
	clients := []string{"c0", "c1", "2001:db8:1:2::/64", "2001:db8:1:3::/64", "2001:db8:1:100::/64", "2001:db8:2::/64"}
	client := func() string { return clients[r.IntN(len(clients))] }
	now := t0
	for range 20_000 {
		now = now.Add(time.Duration(r.IntN(20_000)) * time.Millisecond)
		addr := fmt.Sprintf("u%d@example.com", r.IntN(60))
		switch r.IntN(4) {
		case 0:
			p := testPending(now, byte(r.IntN(256)))
			p.Hash[1] = byte(r.IntN(256))
			if res, err := m.Issue(t.Context(), addr, client(), p, now, lim); err == nil && res.Existing == nil {
				hashes[addr] = p.Hash
			}
		case 1:
			_, _ = m.Attempt(t.Context(), addr, client(), now, lim)
		case 2:
			_, _ = m.Consume(t.Context(), addr, client(), hashes[addr])
		case 3:
			_ = m.Discard(t.Context(), addr, hashes[addr])
		}
		checkCount(t, m)
		live := 0
		for _, st := range m.addrs {
			if st.hasCode() && now.UnixNano() < st.expires {
				live++
			}
		}
		if live > lim.MaxPending {
			t.Fatalf("%d unexpired codes held, cap %d", live, lim.MaxPending)
		}
	}
}
