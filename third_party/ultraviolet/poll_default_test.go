//go:build !windows
// +build !windows

package uv

import (
	"os"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Errorf("expected no error, but got %s", err)
	}
	defer pw.Close()
	defer pr.Close()

	pollReader, err := newPollReader(pr)
	if err != nil {
		t.Errorf("expected no error, but got %s", err)
	}

	// otplogin patch: cancel before the read starts. Cancel does not end
	// a Read already blocked: on Linux, epollReader.Read is a plain read,
	// which callers Poll before (as TerminalReader does). The test passed
	// only when Cancel won the race against the goroutine's start; when it
	// lost, the test waited 100 ms and went on, racing the goroutine for n
	// and err.
	if !pollReader.Cancel() {
		t.Errorf("expected cancellation to be success")
	}

	// Nothing is written to the pipe yet: a read that ignored the
	// cancellation would block.
	done := make(chan struct{})
	var n int
	go func() {
		defer close(done)
		p := make([]byte, 1)
		n, err = pollReader.Read(p)
	}()

	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("expected the cancellation to end the read")
	}
	if n != 0 {
		t.Errorf("expected 0 bytes read but got %d", n)
	}
	if err != ErrCanceled {
		t.Errorf("expected cancel error but got %s", err)
	}

	// Test that read is still possible after cancellation.
	pollReader, err = newPollReader(pr)
	if err != nil {
		t.Errorf("expected no error, but got %s", err)
	}
	msg := "hello"
	n, err = pw.Write([]byte(msg))
	if n != 5 {
		t.Errorf("expected 5 bytes written but got %d", n)
	}
	if err != nil {
		t.Errorf("expected no error, but got %s", err)
	}
	p := make([]byte, 5)
	n, err = pollReader.Read(p)
	if n != 5 {
		t.Errorf("expected 5 bytes written but got %d", n)
	}
	if err != nil {
		t.Errorf("expected no error, but got %s", err)
	}
	if string(p[:n]) != msg[:n] {
		t.Errorf("expected to read %q but got %q", msg[:n], string(p[:n]))
	}
}
