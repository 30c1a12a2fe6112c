// Package leakcheck fails a test that leaves goroutines behind.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutine count now and, when the test ends (after
// cleanups registered later have run), polls for a bounded time until the
// count is back; otherwise it fails and prints the stacks.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left behind (before %d, now %d):\n%s", n-before, before, n, strings.TrimSpace(string(buf)))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
