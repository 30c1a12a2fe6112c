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
// bounded: state is created only by a successful Issue or Attempt, lives
// at most one counter window (or ExpiredRetention past a code's expiry)
// after its last use, and the number of tracked addresses, clients and
// extra per-address client shares is capped at 8×MaxPending (LimitBusy
// beyond that). Attempt adds a share only within an address's failure
// budget, so it cannot outgrow that bound by more than the budget allows.
// Its methods never wait, so they ignore their contexts.
//
// One departure from the Store contract, the price of the sweep limit:
// while MaxPending is reached, a code that expires less than a second after
// the last sweep frees its slot (and RetryAt says so) up to a second late.
//
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	addrs   map[string]*addrState
	clients map[string]*window // per client scope: codes to all addresses
	// second and hour count the codes issued, for the global rate.
	second, hour window
	// pending counts codes with counted set: all unexpired codes, plus
	// expired ones no sweep has retired yet.
	pending int
	// shares counts the client shares held outside addrState.own.
	shares int
	// nextExpiry: no counted code expires before it (unix ns).
	nextExpiry   int64
	lastSweep    int64
	lastCapSweep int64
	peakAddrs    int
	peakClients  int
}

// addrState is everything kept per address: 112 bytes with the first
// client's share inline (one allocator class above the 80 it took without
// per-client shares) and a 32-byte hash, plus the map slot and the key
// string.
type addrState struct {
	// hash is nil or an array never written after Issue made it, so Attempt
	// can hand out a slice of it without copying.
	hash                    *[sha256.Size]byte
	issued, expires, resend int64 // unix ns
	total                   counters
	attempts                int32
	counted                 bool // counted in MemoryStore.pending
	// own is the first client's share of the address's limits; most
	// addresses only ever see one client, which then costs no allocation.
	own  share
	more *[]share
}

// share is one client scope's use of one address: its failures and codes.
type share struct {
	key string // a ClientScope.Key
	c   counters
}

// hasCode reports whether a code is pending (live or not yet discarded).
func (st *addrState) hasCode() bool { return st.hash != nil }

// counter names one of the two windows of counters.
type counter uint8

const (
	failures counter = iota
	issues
)

func (k counter) span(lim *Limits) time.Duration {
	if k == failures {
		return lim.FailureWindow
	}
	return lim.IssueWindow
}

// counters are a failure window and an issue window, packed into 24 bytes
// rather than two 16-byte windows.
type counters struct {
	start [2]int64 // unix ns
	n     [2]int32
}

func (c *counters) used(k counter, now int64, lim *Limits) int {
	if now >= c.start[k]+int64(k.span(lim)) {
		return 0
	}
	return int(c.n[k])
}

func (c *counters) charge(k counter, now int64, lim *Limits) {
	if now >= c.start[k]+int64(k.span(lim)) {
		c.start[k], c.n[k] = now, 0
	}
	c.n[k]++
}

func (c *counters) refund(k counter) {
	if c.n[k] > 0 {
		c.n[k]--
	}
}

func (c *counters) end(k counter, lim *Limits) int64 { return c.start[k] + int64(k.span(lim)) }

// idle: every window has ended, so the counters hold nothing.
func (c *counters) idle(now int64, lim *Limits) bool {
	return c.used(failures, now, lim) == 0 && c.used(issues, now, lim) == 0
}

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
	var buf [maxScopes]scopeKey
	scopes := clientKeys(client, &buf)
	n := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if n >= m.lastSweep+int64(sweepEvery) {
		m.sweep(n, &lim)
	}

	st := m.addrs[addr]
	if st != nil {
		if err := st.failuresSpent(scopes, n, &lim); err != nil {
			return IssueResult{}, err
		}
		if st.hasCode() && n < st.resend {
			if n < st.expires && int(st.attempts) < lim.MaxAttempts {
				ex := st.pending()
				return IssueResult{Existing: &ex}, nil
			}
			return IssueResult{}, limitErr(LimitResend, unix(st.resend))
		}
		if st.total.used(issues, n, &lim) >= lim.AddressIssues {
			return IssueResult{}, limitErr(LimitAddress, unix(st.total.end(issues, &lim)))
		}
		if end, spent := st.shareSpent(issues, scopes, n, &lim); spent {
			return IssueResult{}, limitErr(LimitAddress, unix(end))
		}
	}
	var cws [maxScopes]*window
	missing, latest := 0, int64(math.MinInt64)
	for i, sc := range scopes {
		cws[i] = m.clients[sc.key]
		switch cw := cws[i]; {
		case cw == nil:
			missing++
		case cw.used(n, lim.IssueWindow) >= lim.capAt(issues, sc.bits, false):
			latest = max(latest, cw.start+int64(lim.IssueWindow))
		}
	}
	if latest != math.MinInt64 {
		return IssueResult{}, limitErr(LimitClient, unix(latest))
	}
	if m.second.used(n, time.Second) >= lim.GlobalIssuesPerSecond {
		return IssueResult{}, limitErr(LimitGlobalRate, m.second.end(time.Second))
	}
	if m.hour.used(n, time.Hour) >= lim.GlobalIssuesPerHour {
		return IssueResult{}, limitErr(LimitGlobalRate, m.hour.end(time.Hour))
	}
	newEntries := missing
	if st == nil {
		newEntries += len(scopes) // the state and its shares beyond own
	} else {
		newEntries += st.missingShares(scopes)
	}
	swept, err := m.room(st, newEntries, n, &lim)
	if err != nil {
		return IssueResult{}, err
	}
	if swept {
		// The sweep may have deleted this address's state or a client's
		// window (idle ones); charging those would be lost.
		st = m.addrs[addr]
		for i, sc := range scopes {
			cws[i] = m.clients[sc.key]
		}
	}

	if st == nil {
		st = new(addrState)
		m.addrs[addr] = st
		m.peakAddrs = max(m.peakAddrs, len(m.addrs))
	}
	for i, sc := range scopes {
		if cws[i] == nil {
			cws[i] = new(window)
			m.clients[sc.key] = cws[i]
		}
		cws[i].charge(n, lim.IssueWindow)
		st.shareOf(m, sc.key, n, &lim).c.charge(issues, n, &lim)
	}
	m.peakClients = max(m.peakClients, len(m.clients))
	if !st.counted {
		st.counted = true
		m.pending++
	}
	st.hash = (*[sha256.Size]byte)(bytes.Clone(p.Hash))
	st.issued, st.expires, st.resend = p.IssuedAt.UnixNano(), p.ExpiresAt.UnixNano(), p.ResendAt.UnixNano()
	st.attempts = 0
	m.nextExpiry = min(m.nextExpiry, st.expires)
	st.total.charge(issues, n, &lim)
	m.second.charge(n, time.Second)
	m.hour.charge(n, time.Hour)
	return IssueResult{}, nil
}

// failuresSpent refuses when the address's failure budget, or the client's
// share of it, is spent.
func (st *addrState) failuresSpent(scopes []scopeKey, n int64, lim *Limits) error {
	if st.total.used(failures, n, lim) >= lim.FailureBudget {
		return limitErr(LimitFailures, unix(st.total.end(failures, lim)))
	}
	if end, spent := st.shareSpent(failures, scopes, n, lim); spent {
		return limitErr(LimitFailures, unix(end))
	}
	return nil
}

// shareSpent reports whether any of the client's scopes has used its cap of
// k at this address, and the latest end among those that have.
func (st *addrState) shareSpent(k counter, scopes []scopeKey, n int64, lim *Limits) (end int64, spent bool) {
	for _, sc := range scopes {
		if sh := st.share(sc.key); sh != nil && sh.c.used(k, n, lim) >= lim.capAt(k, sc.bits, true) {
			end, spent = max(end, sh.c.end(k, lim)), true
		}
	}
	return end, spent
}

// share returns key's share of the address, or nil.
func (st *addrState) share(key string) *share {
	if st.own.key == key {
		return &st.own
	}
	if st.more != nil {
		for i := range *st.more {
			if (*st.more)[i].key == key {
				return &(*st.more)[i]
			}
		}
	}
	return nil
}

// missingShares counts the scopes that would need a new share.
func (st *addrState) missingShares(scopes []scopeKey) int {
	c := 0
	for _, sc := range scopes {
		if st.share(sc.key) == nil {
			c++
		}
	}
	return c
}

// shareOf returns key's share, making one (in a share that holds nothing,
// or a new one) if there is none.
func (st *addrState) shareOf(m *MemoryStore, key string, n int64, lim *Limits) *share {
	if sh := st.share(key); sh != nil {
		return sh
	}
	if st.own.c.idle(n, lim) {
		st.own = share{key: key}
		return &st.own
	}
	if st.more == nil {
		st.more = new([]share)
	}
	for i := range *st.more {
		if sh := &(*st.more)[i]; sh.c.idle(n, lim) {
			*sh = share{key: key}
			return sh
		}
	}
	*st.more = append(*st.more, share{key: key})
	m.shares++
	return &(*st.more)[len(*st.more)-1]
}

// sweepShares forgets shares whose windows have all ended and reports
// whether the address holds none any more.
func (st *addrState) sweepShares(m *MemoryStore, n int64, lim *Limits) bool {
	if st.own.c.idle(n, lim) {
		st.own = share{}
	}
	if st.more != nil {
		kept := (*st.more)[:0]
		for _, sh := range *st.more {
			if !sh.c.idle(n, lim) {
				kept = append(kept, sh)
			}
		}
		m.shares -= len(*st.more) - len(kept)
		clear((*st.more)[len(kept):])
		*st.more = kept
		if len(kept) == 0 {
			st.more = nil
		}
	}
	return st.own.c.idle(n, lim) && st.more == nil
}

// room enforces the global cap on codes and the bound on tracked entries,
// and reports whether it swept. A replacement reuses the slot of the code
// it replaces.
func (m *MemoryStore) room(st *addrState, newEntries int, n int64, lim *Limits) (swept bool, err error) {
	needSlot := st == nil || !st.counted
	maxEntries := entriesPerPending * lim.MaxPending
	tooMany := func() bool { return len(m.addrs)+len(m.clients)+m.shares+newEntries > maxEntries }
	full := func() bool { return needSlot && m.pending >= lim.MaxPending || tooMany() }
	if !full() {
		return false, nil
	}
	// The count may include codes that expired since the last sweep; look
	// again, but rarely enough that a flood of refused calls stays cheap.
	if n >= m.lastCapSweep+int64(capSweepEvery) && (n >= m.nextExpiry || tooMany()) {
		m.lastCapSweep = n
		m.sweep(n, lim)
		if !full() {
			return true, nil
		}
	}
	retry := max(m.lastCapSweep+int64(capSweepEvery), n+int64(time.Millisecond))
	if needSlot && m.pending >= lim.MaxPending {
		retry = max(m.nextExpiry, retry)
	}
	return false, limitErr(LimitBusy, unix(retry))
}

// sweep retires expired codes from the count, drops codes past their
// retention, and deletes state whose windows have all ended.
func (m *MemoryStore) sweep(n int64, lim *Limits) {
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
		if noShares := st.sweepShares(m, n, lim); noShares && !st.hasCode() && st.total.idle(n, lim) {
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
func (m *MemoryStore) Attempt(_ context.Context, addr, client string, now time.Time, lim Limits) (Pending, error) {
	var buf [maxScopes]scopeKey
	scopes := clientKeys(client, &buf)
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
	}
	if st.total.used(failures, n, &lim) >= lim.FailureBudget {
		return Pending{}, limitErr(LimitFailures, unix(st.total.end(failures, &lim)))
	}
	// One lookup per scope for both the check and the charge: this is
	// every Verify's path.
	var shares [maxScopes]*share
	end, spent := int64(0), false
	for i, sc := range scopes {
		sh := st.share(sc.key)
		if sh != nil && sh.c.used(failures, n, &lim) >= lim.capAt(failures, sc.bits, true) {
			end, spent = max(end, sh.c.end(failures, &lim)), true
		}
		shares[i] = sh
	}
	if spent {
		return Pending{}, limitErr(LimitFailures, unix(end))
	}
	st.attempts++
	st.total.charge(failures, n, &lim)
	// Charge the shares found before making new ones: a new share may move
	// the others.
	for _, sh := range shares[:len(scopes)] {
		if sh != nil {
			sh.c.charge(failures, n, &lim)
		}
	}
	for i, sc := range scopes {
		if shares[i] == nil {
			st.shareOf(m, sc.key, n, &lim).c.charge(failures, n, &lim)
		}
	}
	return st.pending(), nil
}

// Consume implements Store.
func (m *MemoryStore) Consume(_ context.Context, addr, client string, hash []byte) (bool, error) {
	var buf [maxScopes]scopeKey
	keys := clientKeys(client, &buf)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.match(addr, hash)
	if st == nil {
		return false, nil
	}
	st.dropCode(m)
	st.total.refund(failures)
	for _, k := range keys {
		if sh := st.share(k.key); sh != nil {
			sh.c.refund(failures)
		}
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
