package ui

import (
	"sync"
	"testing"
)

// TestCacheSharesAndStaysBounded checks that a Cache renders a key once for
// any number of sessions, keeps keys apart, and starts over instead of
// growing past maxCacheEntries.
func TestCacheSharesAndStaysBounded(t *testing.T) {
	c := NewCache()
	var mu sync.Mutex
	renders := map[frameKey]int{}
	render := func(k frameKey) *frameCache {
		mu.Lock()
		renders[k]++
		mu.Unlock()
		return &frameCache{key: k}
	}
	email := frameKey{state: stateEmail, st: theme(true), iw: 60}
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
	if got := c.get(frameKey{state: stateEmail, st: theme(false), iw: 60}, "", render); got == first {
		t.Error("the light theme shares parts with the dark one")
	}
	for iw := range maxCacheEntries + 10 {
		c.get(frameKey{state: stateCode, st: theme(true), iw: iw}, "", render)
	}
	if n := len(c.parts); n > maxCacheEntries {
		t.Errorf("cache holds %d entries, bound %d", n, maxCacheEntries)
	}
}
