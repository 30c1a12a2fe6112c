// Tests of the otplogin patches (see ../README.md): the renderer asks the
// event loop for the view when a frame is due, and must neither lose a
// view change nor hang or leak around exec, restore, quit, kill and panics.
// Written for the review of the View-per-frame patch.
package tea

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"
)

// lockedBuf is an io.Writer safe for the renderer and the test to share.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitOut(t *testing.T, b *lockedBuf, from int, want string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s := b.String(); len(s) >= from && strings.Contains(s[from:], want) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

type patchMsg string

// patchModel shows its text; a patchMsg sets the text, and "exec" also
// runs exec, which records the output written before it ran.
type patchModel struct {
	text string
	alt  bool
	exec *recordExec
}

func (m *patchModel) Init() Cmd { return nil }

func (m *patchModel) Update(msg Msg) (Model, Cmd) {
	if s, ok := msg.(patchMsg); ok {
		switch s {
		case "quit":
			return m, Quit
		case "exec":
			m.text = "BEFORE-EXEC"
			return m, Exec(m.exec, nil)
		default:
			m.text = string(s)
		}
	}
	return m, nil
}

func (m *patchModel) View() View {
	v := NewView(m.text)
	v.AltScreen = m.alt
	return v
}

// recordExec is an ExecCommand that records what the program had written
// when the terminal was handed to it.
type recordExec struct {
	out  *lockedBuf
	seen string
	ran  chan struct{}
}

func (r *recordExec) Run() error          { r.seen = r.out.String(); close(r.ran); return nil }
func (r *recordExec) SetStdin(io.Reader)  {}
func (r *recordExec) SetStdout(io.Writer) {}
func (r *recordExec) SetStderr(io.Writer) {}

// After RestoreTerminal the renderer must repaint on its own (upstream's
// ticker did within a frame), without waiting for a message.
func TestPatchRestoreTerminalRepaints(t *testing.T) {
	out := &lockedBuf{}
	m := &patchModel{text: "HELLO", alt: true}
	p := NewProgram(m, WithInput(nil), WithOutput(out), WithWindowSize(20, 5), WithFPS(60))
	done := make(chan struct{})
	go func() { defer close(done); _, _ = p.Run() }()
	defer func() { p.Quit(); <-done }()
	if !waitOut(t, out, 0, "HELLO", 2*time.Second) {
		t.Fatalf("no first frame: %q", out.String())
	}
	if err := p.ReleaseTerminal(); err != nil {
		t.Fatal(err)
	}
	n := len(out.String())
	if err := p.RestoreTerminal(); err != nil {
		t.Fatal(err)
	}
	if !waitOut(t, out, n, "HELLO", 500*time.Millisecond) {
		t.Errorf("not repainted after RestoreTerminal; output since: %q", out.String()[n:])
	}
}

// The terminal handed to an Exec'd command must show the model as Update
// left it (upstream rendered after every Update), not a view from before
// the last frame interval.
func TestPatchExecDrawsLatestView(t *testing.T) {
	out := &lockedBuf{}
	rec := &recordExec{out: out, ran: make(chan struct{})}
	m := &patchModel{text: "HELLO", exec: rec}
	p := NewProgram(m, WithInput(nil), WithOutput(out), WithWindowSize(20, 5), WithFPS(2))
	done := make(chan struct{})
	go func() { defer close(done); _, _ = p.Run() }()
	if !waitOut(t, out, 0, "HELLO", 2*time.Second) {
		t.Fatalf("no first frame: %q", out.String())
	}
	p.Send(patchMsg("exec")) // within the frame interval of the first frame
	<-rec.ran
	p.Send(patchMsg("quit"))
	<-done
	if !strings.Contains(rec.seen, "BEFORE-EXEC") {
		t.Errorf("exec ran before the view it follows was drawn; output then: %q", rec.seen)
	}
}

func TestPatchNoRendererLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	for i := range 30 {
		out := &lockedBuf{}
		m := &patchModel{text: "HELLO"}
		ctx, cancel := context.WithCancel(context.Background())
		p := NewProgram(m, WithInput(nil), WithOutput(out), WithWindowSize(20, 5), WithFPS(120), WithContext(ctx), WithoutSignalHandler())
		done := make(chan struct{})
		go func() { defer close(done); _, _ = p.Run() }()
		for j := range 5 {
			p.Send(patchMsg(fmt.Sprint("x", j)))
		}
		switch i % 3 {
		case 0:
			p.Quit()
		case 1:
			p.Kill()
		case 2:
			cancel()
		}
		<-done
		cancel()
	}
	time.Sleep(200 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}

type panicViewModel struct{ n int }

func (m *panicViewModel) Init() Cmd { return nil }
func (m *panicViewModel) Update(msg Msg) (Model, Cmd) {
	if _, ok := msg.(patchMsg); ok {
		m.n++
	}
	return m, nil
}
func (m *panicViewModel) View() View {
	// At least, not exactly: View runs once per frame, and a frame may
	// come after several messages.
	if m.n >= 3 {
		panic("view panic")
	}
	return NewView(fmt.Sprint("N", m.n))
}

func TestPatchViewPanicNoHang(t *testing.T) {
	base := runtime.NumGoroutine()
	for range 10 {
		out := &lockedBuf{}
		p := NewProgram(&panicViewModel{}, WithInput(nil), WithOutput(out), WithWindowSize(20, 5), WithFPS(120), WithoutSignalHandler())
		done := make(chan error)
		go func() { _, err := p.Run(); done <- err }()
		go func() {
			for range 10 {
				p.Send(patchMsg("x"))
				time.Sleep(3 * time.Millisecond)
			}
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrProgramPanic) {
				t.Errorf("Run returned %v, want ErrProgramPanic", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("hang")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}

// Every goroutine a Program starts recovers from a panic (unless
// WithoutCatchPanics): the program ends with an error that wraps
// ErrProgramPanic and carries the panic (*PanicError), the terminal is
// restored, the process goes on, and no goroutine is left behind. The
// tests below inject a panic into each goroutine that one can be injected
// into; TestPatchEveryGoroutineRecovers checks the source for the rest.

// panicReader is an input whose Read panics. It is a fault injection: no
// real terminal or SSH channel panics on demand, and neither does the input
// decoder once its known panics are fixed; this stands in for both.
type panicReader struct{ value any }

func (r panicReader) Read([]byte) (int, error) { panic(r.value) }

// panicLogger panics when asked to log a message whose format starts with
// prefix. The terminal reader logs each chunk of input ("input: %q") on
// readLoop's goroutine right before it decodes the chunk there, so a panic
// in it stands in for a panic in the decoder, which no input triggers on
// demand. The logger is the program's own field (TEA_TRACE sets it): the
// test adds no seam.
type panicLogger struct {
	prefix string
	value  any
}

func (l panicLogger) Printf(format string, _ ...any) {
	if strings.HasPrefix(format, l.prefix) {
		panic(l.value)
	}
}

// panicOnceWriter is an output whose first Write that contains marker
// panics, as a fault in the renderer's write path would (a real terminal or
// SSH channel returns an error; nothing real panics on demand). The writes
// before and after it succeed and are kept, to see the terminal restored.
type panicOnceWriter struct {
	lockedBuf
	marker string
	value  any
	fired  atomic.Bool
}

func (w *panicOnceWriter) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(w.marker)) && w.fired.CompareAndSwap(false, true) {
		panic(w.value)
	}
	return w.lockedBuf.Write(b)
}

// panicExec is an ExecCommand whose Run panics.
type panicExec struct{ value any }

func (e panicExec) Run() error          { panic(e.value) }
func (e panicExec) SetStdin(io.Reader)  {}
func (e panicExec) SetStdout(io.Writer) {}
func (e panicExec) SetStderr(io.Writer) {}

// okExec is an ExecCommand that does nothing.
type okExec struct{}

func (okExec) Run() error          { return nil }
func (okExec) SetStdin(io.Reader)  {}
func (okExec) SetStdout(io.Writer) {}
func (okExec) SetStderr(io.Writer) {}

// cmdModel returns init from Init and shows text; a patchMsg sets the text.
type cmdModel struct {
	init Cmd
	text string
	alt  bool
}

func (m *cmdModel) Init() Cmd { return m.init }

func (m *cmdModel) Update(msg Msg) (Model, Cmd) {
	if s, ok := msg.(patchMsg); ok {
		m.text = string(s)
	}
	return m, nil
}

func (m *cmdModel) View() View {
	v := NewView(m.text)
	v.AltScreen = m.alt
	return v
}

func panicking(value any) Cmd { return func() Msg { panic(value) } }

func okCmd() Msg { return patchMsg("ok") }

// runUntilDone runs p and returns Run's error, or fails the test with every
// goroutine's stack if Run does not return in time.
func runUntilDone(t *testing.T, p *Program) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Run did not return after a panic\n%s", buf[:runtime.Stack(buf, true)])
		return nil
	}
}

func TestPatchGoroutinePanicsEndTheProgram(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the program, the panic value it will hit, and a
		// function called after Run returned.
		setup func(t *testing.T, value string) (p *Program, after func())
		// frame is a function that must be on the stack of the panic: it
		// tells which goroutine panicked.
		frame string
	}{
		{
			name: "input Read",
			setup: func(t *testing.T, value string) (*Program, func()) {
				p := NewProgram(&cmdModel{text: "HELLO"}, WithInput(panicReader{value}), WithOutput(&lockedBuf{}), WithWindowSize(20, 5))
				return p, nil
			},
			frame: "(*panicSafeReader).Read",
		},
		{
			name: "input decoder (readLoop)",
			setup: func(t *testing.T, value string) (*Program, func()) {
				// Not a file, as serve's input is not (the SSH channel):
				// the read pending when the program ends returns when the
				// input closes, as the channel does when the session ends.
				r, w := io.Pipe()
				p := NewProgram(&cmdModel{text: "HELLO"}, WithInput(r), WithOutput(&lockedBuf{}), WithWindowSize(20, 5))
				p.logger = panicLogger{prefix: "input:", value: value}
				go func() { _, _ = w.Write([]byte("x")) }()
				return p, func() { _ = w.Close() }
			},
			frame: "readLoop",
		},
		{
			name: "input decoder (readLoop), file input",
			setup: func(t *testing.T, value string) (*Program, func()) {
				// A file: the cancel reader polls it, and its Close must
				// not lose the wake-up of the cancel while the read
				// goroutine still waits in it.
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				p := NewProgram(&cmdModel{text: "HELLO"}, WithInput(r), WithOutput(&lockedBuf{}), WithWindowSize(20, 5))
				p.logger = panicLogger{prefix: "input:", value: value}
				if _, err := w.WriteString("x"); err != nil {
					t.Fatal(err)
				}
				return p, func() { _ = w.Close(); _ = r.Close() }
			},
			frame: "readLoop",
		},
		{
			name: "renderer",
			setup: func(t *testing.T, value string) (*Program, func()) {
				// The second frame panics, as drawing a view can: the
				// first one put the terminal in the alternate screen.
				out := &panicOnceWriter{marker: "BOOM", value: value}
				p := NewProgram(&cmdModel{text: "HELLO", alt: true}, WithInput(nil), WithOutput(out), WithWindowSize(20, 5))
				var shown int
				go func() {
					if waitOut(t, &out.lockedBuf, 0, "HELLO", 5*time.Second) {
						shown = len(out.String())
						p.Send(patchMsg("BOOM"))
					}
				}()
				return p, func() {
					// Restored as after any panic: the renderer's close
					// left the alternate screen and showed the cursor.
					s := out.String()[shown:]
					if !strings.Contains(s, ansi.ResetModeAltScreenSaveCursor) || !strings.Contains(s, ansi.ShowCursor) {
						t.Errorf("terminal not restored after the renderer's panic; output since the first frame: %q", s)
					}
				}
			},
			frame: "startRenderer",
		},
		{
			name: "renderer restarted after exec",
			setup: func(t *testing.T, value string) (*Program, func()) {
				out := &panicOnceWriter{marker: "BOOM", value: value}
				m := &cmdModel{text: "HELLO", init: Exec(okExec{}, func(error) Msg { return patchMsg("BOOM") })}
				return NewProgram(m, WithInput(nil), WithOutput(out), WithWindowSize(20, 5)), nil
			},
			frame: "startRenderer",
		},
		{
			name: "command",
			setup: func(t *testing.T, value string) (*Program, func()) {
				m := &cmdModel{text: "HELLO", init: panicking(value)}
				return NewProgram(m, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5)), nil
			},
			frame: "handleCommands",
		},
		{
			name: "command in Batch",
			setup: func(t *testing.T, value string) (*Program, func()) {
				m := &cmdModel{text: "HELLO", init: Batch(okCmd, panicking(value))}
				return NewProgram(m, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5)), nil
			},
			frame: "execBatchMsg",
		},
		{
			name: "command in Sequence",
			setup: func(t *testing.T, value string) (*Program, func()) {
				m := &cmdModel{text: "HELLO", init: Sequence(okCmd, panicking(value), okCmd)}
				return NewProgram(m, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5)), nil
			},
			frame: "execSequenceMsg",
		},
		{
			name: "Batch in Sequence",
			setup: func(t *testing.T, value string) (*Program, func()) {
				m := &cmdModel{text: "HELLO", init: Sequence(okCmd, Batch(okCmd, panicking(value)))}
				return NewProgram(m, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5)), nil
			},
			frame: "execBatchMsg",
		},
		{
			name: "exec'd command",
			setup: func(t *testing.T, value string) (*Program, func()) {
				m := &cmdModel{text: "HELLO", init: Exec(panicExec{value}, nil)}
				return NewProgram(m, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5)), nil
			},
			frame: "panicExec.Run",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			value := "injected panic: " + tt.name
			p, after := tt.setup(t, value)
			err := runUntilDone(t, p)
			if after != nil {
				after()
			}
			if !errors.Is(err, ErrProgramPanic) {
				t.Fatalf("Run returned %v, want an error wrapping ErrProgramPanic", err)
			}
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Run returned %v, want a *PanicError in it", err)
			}
			if pe.Value != value {
				t.Errorf("PanicError.Value = %v, want %q", pe.Value, value)
			}
			if !bytes.Contains(pe.Stack(), []byte(tt.frame)) {
				t.Errorf("PanicError.Stack has no %s:\n%s", tt.frame, pe.Stack())
			}
		})
	}

	// The process went on, and a new program still runs and quits.
	p := NewProgram(&patchModel{text: "HELLO"}, WithInput(nil), WithOutput(&lockedBuf{}), WithWindowSize(20, 5))
	go p.Quit()
	if _, err := p.Run(); err != nil {
		t.Errorf("a program after the panics: %v", err)
	}
}

// The goroutines no test above can make panic (the signal and resize
// handlers need a real signal or terminal, the command loop and the initial
// command's hand-off only move values between channels) recover all the
// same: every go statement in the package starts a function that defers a
// recover, so that a goroutine added by a later upstream version without one
// fails here. The exceptions run nothing that can panic.
func TestPatchEveryGoroutineRecovers(t *testing.T) {
	exempt := map[string]string{
		"Send":                                   "a select on two channels; its argument is computed by the caller",
		"channelHandlers.shutdown: func literal": "a receive and wg.Done",
		"listenForResize in signals_windows.go":  "closes a channel",
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Functions by name; a name can have one per platform.
	type decl struct {
		file string
		body *ast.BlockStmt
	}
	decls := map[string][]decl{}
	var files []*ast.File
	for _, pkg := range pkgs {
		for name, f := range pkg.Files {
			files = append(files, f)
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					decls[fd.Name.Name] = append(decls[fd.Name.Name], decl{filepath.Base(name), fd.Body})
				}
			}
		}
	}
	// recovers tells whether body defers p.catchGoPanic() or a function
	// literal that calls recover, outside any function literal of its own.
	recovers := func(body *ast.BlockStmt) bool {
		found := false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncLit:
				return false
			case *ast.DeferStmt:
				if sel, ok := n.Call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "catchGoPanic" {
					found = true
				}
				if lit, ok := n.Call.Fun.(*ast.FuncLit); ok {
					ast.Inspect(lit.Body, func(n ast.Node) bool {
						if c, ok := n.(*ast.CallExpr); ok {
							if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "recover" {
								found = true
							}
						}
						return true
					})
				}
			}
			return true
		})
		return found
	}
	var count int
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			encl := fd.Name.Name
			if fd.Recv != nil {
				recv := fd.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					encl = id.Name + "." + encl
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				g, ok := n.(*ast.GoStmt)
				if !ok {
					return true
				}
				count++
				pos := fset.Position(g.Pos())
				var targets []decl
				var name string
				switch fn := g.Call.Fun.(type) {
				case *ast.FuncLit:
					name = encl + ": func literal"
					targets = []decl{{pos.Filename, fn.Body}}
				case *ast.SelectorExpr:
					name = fn.Sel.Name
					targets = decls[name]
				}
				if _, ok := exempt[name]; ok {
					return true
				}
				if len(targets) == 0 {
					t.Errorf("%s: go statement this test cannot follow", pos)
				}
				for _, d := range targets {
					if _, ok := exempt[name+" in "+d.file]; ok {
						continue
					}
					if !recovers(d.body) {
						t.Errorf("%s: the goroutine (%s in %s) does not recover from a panic", pos, name, d.file)
					}
				}
				return true
			})
		}
	}
	if count < 15 {
		t.Errorf("found %d go statements; the package has more: is the test reading it?", count)
	}
}

// WithoutCatchPanics still lets a panic through, now in the goroutines
// that recover too: the process crashes with the panic. Each case runs in
// a child process, this test binary run again for one case.
func TestPatchWithoutCatchPanicsCrashes(t *testing.T) {
	const env = "OTPLOGIN_TEA_CRASH_CASE"
	if c := os.Getenv(env); c != "" {
		var p *Program
		switch c {
		case "reader":
			p = NewProgram(&cmdModel{text: "HELLO"}, WithInput(panicReader{"crash: reader"}), WithOutput(&lockedBuf{}), WithWindowSize(20, 5), WithoutCatchPanics())
		case "renderer":
			out := &panicOnceWriter{marker: "HELLO", value: "crash: renderer"}
			p = NewProgram(&cmdModel{text: "HELLO"}, WithInput(nil), WithOutput(out), WithWindowSize(20, 5), WithoutCatchPanics())
		}
		_, err := p.Run()
		fmt.Println("Run returned:", err)
		return
	}
	for _, c := range []string{"reader", "renderer"} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPatchWithoutCatchPanicsCrashes$", "-test.count=1")
			cmd.Env = append(os.Environ(), env+"="+c)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("child: %v, want exit status 2 (a panic); output:\n%s", err, out)
			}
			if !bytes.Contains(out, []byte("panic: crash: "+c)) {
				t.Errorf("child did not crash with the injected panic; output:\n%s", out)
			}
		})
	}
}

// signalLogger closes read the first time the terminal reader logs a chunk
// of input ("input: %q"), which it does right before it buffers and decodes
// the chunk. The logger is the program's own field (TEA_TRACE sets it).
type signalLogger struct {
	once sync.Once
	read chan struct{}
}

func (l *signalLogger) Printf(format string, _ ...any) {
	if strings.HasPrefix(format, "input:") {
		l.once.Do(func() { close(l.read) })
	}
}

// The input loop ends with the program, however it ends, even when it
// holds input it has not handed over yet: a lone ESC waits for the rest of
// a sequence, and the loop sends it when the program stops, to a channel
// nobody reads any more (upstream: the loop, and the program it holds, stay
// for ever). And a kill waits for a file input's loop before it closes the
// reader (upstream closed it at once and lost the wake-up of the cancel:
// the loop stayed in epoll_wait for ever).
func TestPatchInputLoopEndsWithProgram(t *testing.T) {
	inputs := []struct {
		name string
		// open returns the program's input, a writer to it, and what ends
		// the input after Run returned.
		open func(t *testing.T) (io.Reader, io.Writer, func())
	}{
		{"file", func(t *testing.T) (io.Reader, io.Writer, func()) {
			// The cancel reader polls a file and cancels its read.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			return r, w, func() { _ = w.Close(); _ = r.Close() }
		}},
		{"not a file", func(t *testing.T) (io.Reader, io.Writer, func()) {
			// As serve's SSH channel: the read pending at the end cannot
			// be cancelled and returns when the input closes, as the
			// channel does when the session ends.
			r, w := io.Pipe()
			return r, w, func() { _ = w.Close() }
		}},
	}
	ends := []struct {
		name string
		end  func(p *Program)
		want error
	}{
		{"quit", func(p *Program) { p.Quit() }, nil},
		{"kill", func(p *Program) { p.Kill() }, ErrProgramKilled},
		{"panic in a command", func(p *Program) { p.Send(BatchMsg{okCmd, panicking("end")}) }, ErrProgramPanic},
	}
	for _, in := range inputs {
		for _, end := range ends {
			t.Run(in.name+"/"+end.name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				for range 10 { // the kill race lost about one time in two
					r, w, closeInput := in.open(t)
					log := &signalLogger{read: make(chan struct{})}
					out := &lockedBuf{}
					p := NewProgram(&cmdModel{text: "HELLO"}, WithInput(r), WithOutput(out), WithWindowSize(20, 5))
					p.logger = log
					go func() {
						// Once the program is up (a Kill during Run's
						// start-up races with it, upstream too).
						if waitOut(t, out, 0, "HELLO", 5*time.Second) {
							_, _ = w.Write([]byte("\x1b"))
						}
					}()
					go func() {
						<-log.read
						end.end(p)
					}()
					err := runUntilDone(t, p)
					closeInput()
					if !errors.Is(err, end.want) {
						t.Fatalf("Run returned %v, want %v", err, end.want)
					}
				}
			})
		}
	}
}
