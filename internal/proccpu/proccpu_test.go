package proccpu

import (
	"testing"
	"time"
)

// TestSelfGrows checks that spinning shows up as CPU time.
func TestSelfGrows(t *testing.T) {
	before := Self()
	if before <= 0 {
		t.Skip("no CPU time on this platform")
	}
	deadline := time.Now().Add(5 * time.Second)
	for Self()-before < 10*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("5 s of spinning counted as %v of CPU", Self()-before)
		}
	}
}
