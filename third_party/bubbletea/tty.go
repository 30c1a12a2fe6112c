package tea

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	uv "github.com/charmbracelet/ultraviolet"
	"github.com/charmbracelet/x/term"
	"github.com/muesli/cancelreader"
)

func (p *Program) suspend() {
	if err := p.releaseTerminal(true); err != nil {
		// If we can't release input, abort.
		return
	}

	suspendProcess()

	_ = p.RestoreTerminal()
	go p.Send(ResumeMsg{})
}

func (p *Program) initTerminal() error {
	if p.disableRenderer {
		return nil
	}
	return p.initInput()
}

// restoreTerminalState restores the terminal to the state prior to running the
// Bubble Tea program.
func (p *Program) restoreTerminalState() error {
	// Flush queued commands.
	_ = p.flush()

	return p.restoreInput()
}

// restoreInput restores the tty input to its original state.
func (p *Program) restoreInput() error {
	if p.ttyInput != nil && p.previousTtyInputState != nil {
		if err := term.Restore(p.ttyInput.Fd(), p.previousTtyInputState); err != nil {
			return fmt.Errorf("bubbletea: error restoring console: %w", err)
		}
	}
	if p.ttyOutput != nil && p.previousOutputState != nil {
		if err := term.Restore(p.ttyOutput.Fd(), p.previousOutputState); err != nil {
			return fmt.Errorf("bubbletea: error restoring console: %w", err)
		}
	}
	return nil
}

// initInputReader (re)commences reading inputs.
func (p *Program) initInputReader(cancel bool) error {
	if cancel && p.cancelReader != nil {
		p.cancelReader.Cancel()
		p.waitForReadLoop()
	}

	term := p.environ.Getenv("TERM")

	// Initialize the input reader.
	// This need to be done after the terminal has been initialized and set to
	// raw mode.

	var err error
	p.cancelReader, err = uv.NewCancelReader(p.catchReadPanics(p.input))
	if err != nil {
		return fmt.Errorf("bubbletea: could not create cancelable reader: %w", err)
	}

	drv := uv.NewTerminalReader(p.closeAfterRead(), term)
	drv.SetLogger(p.logger)
	p.inputScanner = drv
	p.readLoopDone = make(chan struct{})

	go p.readLoop()

	return nil
}

func (p *Program) readLoop() {
	defer close(p.readLoopDone)
	// otplogin patch: the input is decoded here, and the bytes can come
	// from anyone (a program per SSH session): a panic in the decoder ends
	// the program, not the process.
	defer p.catchGoPanic()

	if err := p.inputScanner.StreamEvents(p.ctx, p.msgs); err != nil {
		select {
		case <-p.ctx.Done():
			return
		case p.errs <- err:
		}
	}
}

// catchReadPanics wraps in so that a panic in its Read ends the program
// instead of the process: the input is read by a goroutine of the terminal
// reader's (uv.TerminalReader.StreamEvents), out of reach of readLoop's
// recover. Files are left as they are: their Read is a system call, and the
// cancel reader needs the file itself to cancel a read (epoll, kqueue,
// select, the Windows console). Every other reader gets the cancel reader's
// fallback, which only calls Read, wrapped or not. otplogin patch.
func (p *Program) catchReadPanics(in io.Reader) io.Reader {
	if _, ok := in.(cancelreader.File); ok || p.disableCatchPanics {
		return in
	}
	return &panicSafeReader{r: in, p: p}
}

// panicSafeReader turns a panic in r's Read into the end of p and an error
// for the reader's caller, which stops reading. otplogin patch.
type panicSafeReader struct {
	r io.Reader
	p *Program
}

func (s *panicSafeReader) Read(b []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.p.recoverFromGoPanic(r)
			n, err = 0, s.p.panicked.Load()
		}
	}()
	return s.r.Read(b) //nolint:wrapcheck
}

// closeAfterRead guards p.cancelReader so that it is not closed while the
// terminal reader's read goroutine is in its Read, and returns the reader
// for the terminal reader to read. A kill, or a panic in readLoop, closes
// the cancel reader right after Cancel, while that goroutine may still be
// in its Read: closing the epoll (or kqueue, select) reader then loses the
// wake-up Cancel sent, and the goroutine waits for ever. Not on Windows:
// there the terminal reader needs the console reader itself to read console
// events, and Cancel uses CancelIoEx, not a wake-up. otplogin patch.
func (p *Program) closeAfterRead() io.Reader {
	if runtime.GOOS == "windows" {
		return p.cancelReader
	}
	g := &readCloseGuard{CancelReader: p.cancelReader}
	p.cancelReader = g
	return g
}

// readCloseGuard is a cancel reader whose Close waits for the Read in
// flight when the reader was cancelled (the Read then returns at once), so
// that Run does not return while the read goroutine still uses the input;
// otherwise the Read closes the reader when it returns. The terminal reader
// reads from one goroutine. otplogin patch.
type readCloseGuard struct {
	cancelreader.CancelReader
	mu        sync.Mutex
	reading   chan struct{} // while a Read is in flight; closed when it returns
	cancelled bool          // Cancel succeeded
	closing   bool          // Close was called
	closed    bool          // the cancel reader is closed
}

func (g *readCloseGuard) Read(b []byte) (int, error) {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return 0, cancelreader.ErrCanceled
	}
	returned := make(chan struct{})
	g.reading = returned
	g.mu.Unlock()

	n, err := g.CancelReader.Read(b)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.reading = nil
	close(returned)
	if g.closing && !g.closed {
		g.closed = true
		_ = g.CancelReader.Close()
	}
	return n, err //nolint:wrapcheck
}

func (g *readCloseGuard) Cancel() bool {
	ok := g.CancelReader.Cancel()
	g.mu.Lock()
	g.cancelled = g.cancelled || ok
	g.mu.Unlock()
	return ok
}

func (g *readCloseGuard) Close() error {
	g.mu.Lock()
	g.closing = true
	reading, cancelled := g.reading, g.cancelled
	g.mu.Unlock()
	if reading != nil && cancelled {
		select {
		case <-reading:
		case <-time.After(500 * time.Millisecond): //nolint:mnd // as waitForReadLoop
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reading != nil || g.closed {
		return nil // the Read closes it
	}
	g.closed = true
	return g.CancelReader.Close() //nolint:wrapcheck
}

// drainReadLoop takes, and drops, the events the input loop still sends
// once the program has stopped reading them, until the loop ends. A reader
// that cannot be cancelled (not a file: an SSH channel) keeps the loop until
// its pending Read returns, so this goroutine lives as long as the loop
// does, and no longer. otplogin patch.
func (p *Program) drainReadLoop() {
	done := p.readLoopDone
	go func() {
		defer p.catchGoPanic()
		for {
			select {
			case <-done:
				return
			case <-p.msgs:
			}
		}
	}()
}

// waitForReadLoop waits for the cancelReader to finish its read loop.
func (p *Program) waitForReadLoop() {
	select {
	case <-p.readLoopDone:
	case <-time.After(500 * time.Millisecond): //nolint:mnd
		// The read loop hangs, which means the input
		// cancelReader's cancel function has returned true even
		// though it was not able to cancel the read.
	}
}

const (
	defaultWidth  = 80
	defaultHeight = 24
)

// fallbackDimensions returns width and height, falling back to COLUMNS/LINES
// environment variables or 80x24 defaults when dimensions are non-positive.
func (p *Program) fallbackDimensions(width, height int) (int, int) {
	if width <= 0 {
		var cols string
		if p != nil && p.environ != nil {
			cols = p.environ.Getenv("COLUMNS")
		} else {
			cols = os.Getenv("COLUMNS")
		}
		if c, err := strconv.Atoi(cols); err == nil && c > 0 {
			width = c
		} else {
			width = defaultWidth
		}
	}
	if height <= 0 {
		var lines string
		if p != nil && p.environ != nil {
			lines = p.environ.Getenv("LINES")
		} else {
			lines = os.Getenv("LINES")
		}
		if l, err := strconv.Atoi(lines); err == nil && l > 0 {
			height = l
		} else {
			height = defaultHeight
		}
	}
	return width, height
}

// checkResize detects the current size of the output and informs the program
// via a WindowSizeMsg.
func (p *Program) checkResize() {
	if p.ttyOutput == nil {
		// can't query window size
		return
	}

	w, h, err := term.GetSize(p.ttyOutput.Fd())
	if err != nil {
		select {
		case <-p.ctx.Done():
		case p.errs <- err:
		}

		return
	}

	w, h = p.fallbackDimensions(w, h)

	p.width, p.height = w, h
	p.Send(WindowSizeMsg{Width: w, Height: h})
}

// OpenTTY opens the running terminal's TTY for reading and writing.
func OpenTTY() (*os.File, *os.File, error) {
	in, out, err := uv.OpenTTY()
	if err != nil {
		return nil, nil, fmt.Errorf("bubbletea: could not open TTY: %w", err)
	}
	return in, out, nil
}
