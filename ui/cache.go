package ui

import "sync"

// Cache shares rendered screen parts between the Models of one server: the
// titles, explanations and help line of a screen are the same for every
// session with the same width, theme and keys, and rendering them (lipgloss
// styles, wrapping, the help bar) is a good part of what a login costs an
// SSH server (docs/PERFORMANCE.md). Parts that name the address stay with
// their session. A Cache is safe for concurrent use, and its zero value is
// an empty Cache.
type Cache struct {
	mu     sync.Mutex
	parts  map[cacheKey]*frameCache
	inputs map[inputKey]string // empty, focused inputs, placeholder shown
}

// inputKey is what an empty, focused input's view depends on: the screen
// gives the prompt, the theme the styles, the width the padding.
type inputKey struct {
	on Screen
	st *styles
	iw int
}

type cacheKey struct {
	frameKey
	outbox string
}

// maxCacheEntries bounds each of a Cache's maps. A server clamps windows,
// so it needs a few hundred entries (screens x widths x themes x key sets);
// a Cache that fills up anyway starts over rather than grow.
const maxCacheEntries = 4096

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return new(Cache)
}

// input returns the view of an empty, focused input for k, made by render
// on a miss. Every session shows one on each new email and code screen,
// and textinput renders its padding cell by cell.
func (c *Cache) input(k inputKey, render func() string) string {
	return memo(&c.mu, &c.inputs, k, render)
}

// get returns the parts for k, made by render on a miss.
func (c *Cache) get(k frameKey, outbox string, render func(frameKey) *frameCache) *frameCache {
	return memo(&c.mu, &c.parts, cacheKey{k, outbox}, func() *frameCache { return render(k) })
}

// memo returns (*m)[k], made by build on a miss and kept, under mu; *m is
// made on first use and starts over when it holds maxCacheEntries. build
// runs outside the lock: two sessions missing the same key at once both
// build it, which is cheaper than making every session wait on one.
func memo[K comparable, V any](mu *sync.Mutex, m *map[K]V, k K, build func() V) V {
	mu.Lock()
	v, ok := (*m)[k]
	mu.Unlock()
	if ok {
		return v
	}
	v = build()
	mu.Lock()
	if *m == nil || len(*m) >= maxCacheEntries {
		*m = make(map[K]V)
	}
	(*m)[k] = v
	mu.Unlock()
	return v
}
