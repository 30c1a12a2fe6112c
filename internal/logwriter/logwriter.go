// Package logwriter keeps logging from blocking the code that logs.
//
// A bubbletea Update or an SSH session handler that writes a log line must
// never wait on the log's destination: a paused terminal or a stuck pipe
// would freeze every session. A Writer hands each line to one goroutine that
// does the writing, and drops lines, counting them, when it falls behind.
package logwriter

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Writer is an io.Writer whose Write never blocks. Each Write should be one
// whole log line, as loggers do.
type Writer struct {
	out       io.Writer
	lines     chan []byte
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	dropped   atomic.Int64
}

// New starts a Writer to out that buffers up to size lines.
func New(out io.Writer, size int) *Writer {
	w := &Writer{
		out:   out,
		lines: make(chan []byte, size),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.run()
	return w
}

// Write queues a copy of p, or drops it when the queue is full or the
// Writer is closed. It always reports success: a log line is not worth
// failing the caller for.
func (w *Writer) Write(p []byte) (int, error) {
	select {
	case <-w.quit:
		w.dropped.Add(1)
		return len(p), nil
	default:
	}
	select {
	case w.lines <- bytes.Clone(p):
	default:
		w.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is the number of lines dropped so far.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

func (w *Writer) run() {
	defer close(w.done)
	var reported int64
	write := func(p []byte) {
		if d := w.dropped.Load(); d > reported {
			fmt.Fprintf(w.out, "logwriter: %d log lines dropped: the log output was too slow\n", d-reported)
			reported = d
		}
		_, _ = w.out.Write(p)
	}
	for {
		select {
		case p := <-w.lines:
			write(p)
		case <-w.quit:
			for {
				select {
				case p := <-w.lines:
					write(p)
				default:
					return
				}
			}
		}
	}
}

// Close writes what is queued and stops the Writer. Later writes are
// dropped. Close waits for the output, so a stuck output blocks Close: call
// it where the process can afford to wait (at exit).
func (w *Writer) Close() error {
	w.closeOnce.Do(func() { close(w.quit) })
	<-w.done
	return nil
}
