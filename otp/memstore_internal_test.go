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
	now := t0
	for range 20_000 {
		now = now.Add(time.Duration(r.IntN(20_000)) * time.Millisecond)
		addr := fmt.Sprintf("u%d@example.com", r.IntN(60))
		switch r.IntN(4) {
		case 0:
			p := testPending(now, byte(r.IntN(256)))
			p.Hash[1] = byte(r.IntN(256))
			if res, err := m.Issue(t.Context(), addr, fmt.Sprint("c", r.IntN(5)), p, now, lim); err == nil && res.Existing == nil {
				hashes[addr] = p.Hash
			}
		case 1:
			_, _ = m.Attempt(t.Context(), addr, fmt.Sprint("c", r.IntN(5)), now, lim)
		case 2:
			_, _ = m.Consume(t.Context(), addr, fmt.Sprint("c", r.IntN(5)), hashes[addr])
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
