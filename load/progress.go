package load

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
)

// progress shows the run's progress on w until the returned stop is called:
// a redrawn bar on a terminal, otherwise a plain line every few seconds.
func (r *runner) progress(w io.Writer) (stop func()) {
	if w == nil {
		return func() {}
	}
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(f.Fd())
	every := 2 * time.Second
	if tty {
		every = 100 * time.Millisecond
	}
	total := r.cfg.Sessions
	shown := -1
	show := func() {
		done, failed := int(r.done.Load()), r.failed.Load()
		if tty {
			fmt.Fprintf(w, "\r%s %d/%d, %d failed\x1b[K", bar(done, total), done, total, failed)
			return
		}
		if done != shown {
			fmt.Fprintf(w, "load: %d/%d sessions done, %d failed\n", done, total, failed)
			shown = done
		}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				show()
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// barWidth is the progress bar's width in cells.
const barWidth = 40

// bar draws done/total as a bar of block characters. (bubbles/v2 progress
// would pull in a module that go.mod does not have, harmonica, for an
// animation that a redraw every 100ms does not need.)
func bar(done, total int) string {
	full := barWidth * done / max(total, 1)
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", barWidth-full) + "]"
}
