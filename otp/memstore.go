package otp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"sync"
	"time"
)

// How the memory store keeps itself bounded without a goroutine: Issue is
// the only call that adds state, so Issue also removes stale state, with a
// full scan at most once per sweepEvery of the passed clock, and, when the
// global cap is reached, at most once per capSweepEvery (so a flood of
// refused requests cannot make every call O(n)).
const (
	sweepEvery    = time.Minute
	capSweepEvery = time.Second
	// entriesPerPending bounds tracked addresses plus clients (which outlive
	// their codes for the counter windows) at this many per MaxPending.
	entriesPerPending = 8
	// shrinkFloor: maps smaller than this are never rebuilt.
	shrinkFloor = 4096
)

// MemoryStore is a Store in one process's memory, for a single instance.
// It starts no goroutines: stale state is swept inside Issue using the
// passed clock, so it needs no Close and no clock of its own. Memory is
// bounded: state is created only by a successful Issue, lives at most one
// counter window (or ExpiredRetention past a code's expiry) after its last
// use, and the number of tracked addresses and clients is capped at
// 8×MaxPending (LimitBusy beyond that). Its methods never wait, so they
// ignore their contexts.
//
// One departure from the Store contract, the price of the sweep limit:
// while MaxPending is reached, a code that expires less than a second after
// the last sweep frees its slot (and RetryAt says so) up to a second late.
//
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	addrs   map[string]*addrState
	clients map[string]*window
	// pending counts codes with counted set: all unexpired codes, plus
	// expired ones no sweep has retired yet.
	pending int
	// nextExpiry: no counted code expires before it (unix ns).
	nextExpiry   int64
	lastSweep    int64
	lastCapSweep int64
	peakAddrs    int
	peakClients  int
}

// addrState is everything kept per address: 72 bytes (the allocator's
// 80-byte class) and a 32-byte hash, plus the map slot and the key string.
type addrState struct {
	// hash is nil or an array never written after Issue made it, so Attempt
	// can hand out a slice of it without copying.
	hash                    *[sha256.Size]byte
	issued, expires, resend int64 // unix ns
	attempts                int32
	counted                 bool // counted in MemoryStore.pending
	fail, issue             window
}

// hasCode reports whether a code is pending (live or not yet discarded).
func (st *addrState) hasCode() bool { return st.hash != nil }

// window is a fixed-window counter: n events since start.
type window struct {
	start int64 // unix ns
	n     int32
}

// used is the count at now for windows of length span.
func (w *window) used(now int64, span time.Duration) int {
	if now >= w.start+int64(span) {
		return 0
	}
	return int(w.n)
}

func (w *window) charge(now int64, span time.Duration) {
	if now >= w.start+int64(span) {
		*w = window{start: now}
	}
	w.n++
}

func (w *window) end(span time.Duration) time.Time { return unix(w.start + int64(span)) }

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		addrs:      make(map[string]*addrState),
		clients:    make(map[string]*window),
		nextExpiry: math.MaxInt64,
	}
}

func unix(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func limitErr(k LimitKind, at time.Time) error { return &LimitError{Kind: k, RetryAt: at} }

// Issue implements Store.
func (m *MemoryStore) Issue(_ context.Context, addr, client string, p Pending, now time.Time, lim Limits) (IssueResult, error) {
	if len(p.Hash) != sha256.Size {
		return IssueResult{}, fmt.Errorf("otp: memory store: hash is %d bytes, want %d", len(p.Hash), sha256.Size)
	}
	n := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if n >= m.lastSweep+int64(sweepEvery) {
		m.sweep(n, lim)
	}

	st := m.addrs[addr]
	if st != nil {
		if st.fail.used(n, lim.FailureWindow) >= lim.FailureBudget {
			return IssueResult{}, limitErr(LimitFailures, st.fail.end(lim.FailureWindow))
		}
		if st.hasCode() && n < st.resend {
			if n < st.expires && int(st.attempts) < lim.MaxAttempts {
				ex := st.pending()
				return IssueResult{Existing: &ex}, nil
			}
			return IssueResult{}, limitErr(LimitResend, unix(st.resend))
		}
		if st.issue.used(n, lim.IssueWindow) >= lim.AddressIssues {
			return IssueResult{}, limitErr(LimitAddress, st.issue.end(lim.IssueWindow))
		}
	}
	cw := m.clients[client]
	if cw != nil && cw.used(n, lim.IssueWindow) >= lim.ClientIssues {
		return IssueResult{}, limitErr(LimitClient, cw.end(lim.IssueWindow))
	}
	if err := m.room(st, cw, n, lim); err != nil {
		return IssueResult{}, err
	}

	if st == nil {
		st = new(addrState)
		m.addrs[addr] = st
		m.peakAddrs = max(m.peakAddrs, len(m.addrs))
	}
	if cw == nil {
		cw = new(window)
		m.clients[client] = cw
		m.peakClients = max(m.peakClients, len(m.clients))
	}
	if !st.counted {
		st.counted = true
		m.pending++
	}
	st.hash = (*[sha256.Size]byte)(bytes.Clone(p.Hash))
	st.issued, st.expires, st.resend = p.IssuedAt.UnixNano(), p.ExpiresAt.UnixNano(), p.ResendAt.UnixNano()
	st.attempts = 0
	m.nextExpiry = min(m.nextExpiry, st.expires)
	st.issue.charge(n, lim.IssueWindow)
	cw.charge(n, lim.IssueWindow)
	return IssueResult{}, nil
}

// room enforces the global cap on codes and the bound on tracked entries.
// A replacement reuses the slot of the code it replaces.
func (m *MemoryStore) room(st *addrState, cw *window, n int64, lim Limits) error {
	needSlot := st == nil || !st.counted
	newEntries := 0
	if st == nil {
		newEntries++
	}
	if cw == nil {
		newEntries++
	}
	maxEntries := entriesPerPending * lim.MaxPending
	full := func() bool {
		return needSlot && m.pending >= lim.MaxPending || len(m.addrs)+len(m.clients)+newEntries > maxEntries
	}
	if !full() {
		return nil
	}
	// The count may include codes that expired since the last sweep; look
	// again, but rarely enough that a flood of refused calls stays cheap.
	if n >= m.lastCapSweep+int64(capSweepEvery) && (n >= m.nextExpiry || len(m.addrs)+len(m.clients)+newEntries > maxEntries) {
		m.lastCapSweep = n
		m.sweep(n, lim)
		if !full() {
			return nil
		}
	}
	retry := max(m.lastCapSweep+int64(capSweepEvery), n+int64(time.Millisecond))
	if needSlot && m.pending >= lim.MaxPending {
		retry = max(m.nextExpiry, retry)
	}
	return limitErr(LimitBusy, unix(retry))
}

// sweep retires expired codes from the count, drops codes past their
// retention, and deletes state whose windows have all ended.
func (m *MemoryStore) sweep(n int64, lim Limits) {
	m.lastSweep = n
	next := int64(math.MaxInt64)
	for k, st := range m.addrs {
		if st.hasCode() {
			if st.counted && n >= st.expires {
				st.counted = false
				m.pending--
			}
			if n >= max(st.expires+int64(ExpiredRetention), st.resend) {
				st.dropCode(m)
			} else if st.counted {
				next = min(next, st.expires)
			}
		}
		if !st.hasCode() && st.fail.used(n, lim.FailureWindow) == 0 && st.issue.used(n, lim.IssueWindow) == 0 {
			delete(m.addrs, k)
		}
	}
	for k, w := range m.clients {
		if w.used(n, lim.IssueWindow) == 0 {
			delete(m.clients, k)
		}
	}
	m.nextExpiry = next
	// Go maps never give memory back; rebuild one that emptied out after a
	// spike.
	m.addrs = shrink(m.addrs, &m.peakAddrs)
	m.clients = shrink(m.clients, &m.peakClients)
}

func shrink[V any](mp map[string]V, peak *int) map[string]V {
	if *peak < shrinkFloor || len(mp) > *peak/4 {
		return mp
	}
	out := make(map[string]V, len(mp))
	for k, v := range mp {
		out[k] = v
	}
	*peak = len(out)
	return out
}

func (st *addrState) pending() Pending {
	return Pending{
		Hash:      st.hash[:sha256.Size:sha256.Size], // capped: an append copies
		IssuedAt:  unix(st.issued),
		ExpiresAt: unix(st.expires),
		ResendAt:  unix(st.resend),
		Attempts:  int(st.attempts),
	}
}

func (st *addrState) dropCode(m *MemoryStore) {
	if st.counted {
		m.pending--
	}
	st.counted, st.attempts, st.hash = false, 0, nil
}

// Attempt implements Store.
func (m *MemoryStore) Attempt(_ context.Context, addr string, now time.Time, lim Limits) (Pending, error) {
	n := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.addrs[addr]
	switch {
	case st == nil || !st.hasCode():
		return Pending{}, ErrNoCode
	case n >= st.expires:
		return Pending{}, ErrExpired
	case int(st.attempts) >= lim.MaxAttempts:
		return Pending{}, ErrTooManyAttempts
	case st.fail.used(n, lim.FailureWindow) >= lim.FailureBudget:
		return Pending{}, limitErr(LimitFailures, st.fail.end(lim.FailureWindow))
	}
	st.attempts++
	st.fail.charge(n, lim.FailureWindow)
	return st.pending(), nil
}

// Consume implements Store.
func (m *MemoryStore) Consume(_ context.Context, addr string, hash []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.match(addr, hash)
	if st == nil {
		return false, nil
	}
	st.dropCode(m)
	if st.fail.n > 0 {
		st.fail.n--
	}
	return true, nil
}

// Discard implements Store.
func (m *MemoryStore) Discard(_ context.Context, addr string, hash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.match(addr, hash); st != nil {
		st.dropCode(m)
	}
	return nil
}

// match returns addr's state if it holds a code with this hash.
func (m *MemoryStore) match(addr string, hash []byte) *addrState {
	st := m.addrs[addr]
	if st == nil || !st.hasCode() || subtle.ConstantTimeCompare(st.hash[:], hash) != 1 {
		return nil
	}
	return st
}
