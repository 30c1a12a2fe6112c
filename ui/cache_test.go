package ui

import (
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// TestCacheSharesAndStaysBounded checks that a Cache renders a key once for
// any number of sessions, keeps keys apart, and starts over instead of
// growing past maxCacheEntries.
func TestCacheSharesAndStaysBounded(t *testing.T) {
	var c Cache // the zero value works
	var mu sync.Mutex
	renders := map[frameKey]int{}
	render := func(k frameKey) *frameCache {
		mu.Lock()
		renders[k]++
		mu.Unlock()
		return &frameCache{key: k}
	}
	email := frameKey{on: ScreenEmail, st: theme(true), iw: 60}
	first := c.get(email, "", render)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if got := c.get(email, "", render); got != first {
				t.Errorf("a second session got its own parts for the same key")
			}
		})
	}
	wg.Wait()
	if renders[email] != 1 {
		t.Errorf("rendered %d times for one key, want 1", renders[email])
	}
	if got := c.get(email, "/tmp/outbox", render); got == first {
		t.Error("a Model with an outbox shares parts with one without")
	}
	if got := c.get(frameKey{on: ScreenEmail, st: theme(false), iw: 60}, "", render); got == first {
		t.Error("the light theme shares parts with the dark one")
	}
	for iw := range maxCacheEntries + 10 {
		c.get(frameKey{on: ScreenCode, st: theme(true), iw: iw}, "", render)
	}
	if n := len(c.parts); n > maxCacheEntries {
		t.Errorf("cache holds %d entries, bound %d", n, maxCacheEntries)
	}
}

// TestCacheKeepsAddressesApart walks two SSH sessions that share a Cache
// through the same screens at the same size and theme, one step apart:
// each shows its own address and never the other's.
func TestCacheKeepsAddressesApart(t *testing.T) {
	shared := NewCache()
	e := newEnv(t, otp.Config{})
	addrs := [2]string{"alice@example.com", "bob@example.net"}
	var ds [2]*driver
	var reqs [2]tea.Cmd
	for i := range ds {
		ds[i] = newDriver(t, e.options(Options{Remote: true, Cache: shared}))
		ds[i].draw = true
	}
	for _, s := range []struct {
		name string
		do   func(i int, d *driver)
	}{
		{"sending", func(i int, d *driver) { d.typ(addrs[i]); reqs[i] = d.update(enter) }},
		{"code", func(i int, d *driver) { d.run(reqs[i]) }},
		{"verified", func(i int, d *driver) { d.typ(e.sender.code(t, addrs[i])); d.send(enter) }},
	} {
		for i, d := range ds {
			s.do(i, d)
		}
		for i, d := range ds {
			d.wantView(addrs[i])
			d.wantNotView(addrs[1-i])
		}
	}
}
