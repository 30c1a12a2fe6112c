package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// stuck is an output that blocks until released, like a paused terminal.
type stuck struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (s *stuck) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func TestWriteNeverBlocks(t *testing.T) {
	out := &stuck{release: make(chan struct{})}
	w := New(out, 4)
	// The output is stuck; 100 writes must all return, most dropped.
	for i := range 100 {
		if n, err := fmt.Fprintf(w, "line %d\n", i); err != nil || n == 0 {
			t.Fatalf("write %d: n=%d err=%v", i, n, err)
		}
	}
	if w.Dropped() < 100-4-1 { // the buffer plus the line being written
		t.Errorf("dropped %d lines, want at least %d", w.Dropped(), 100-4-1)
	}
	close(out.release)
	w.Close()
	got := out.buf.String()
	if !strings.Contains(got, "line 0\n") {
		t.Errorf("first line lost:\n%s", got)
	}
	if !strings.Contains(got, "log lines dropped") {
		t.Errorf("drops not reported:\n%s", got)
	}
}

func TestCloseFlushesInOrder(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 16)
	for i := range 10 {
		fmt.Fprintf(w, "%d\n", i)
	}
	w.Close()
	w.Close() // twice is fine
	fmt.Fprintln(w, "after close")
	if got, want := out.String(), "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if w.Dropped() != 1 {
		t.Errorf("dropped %d, want the 1 line written after Close", w.Dropped())
	}
}

func TestWriteCopies(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 4)
	p := []byte("first\n")
	w.Write(p)
	copy(p, "XXXXX\n") // loggers reuse their buffers
	w.Close()
	if out.String() != "first\n" {
		t.Errorf("output %q: the Writer kept the caller's buffer", out.String())
	}
}
