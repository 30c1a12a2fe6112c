// Tests of the otplogin patches (see ../README.md): the renderer asks the
// event loop for the view when a frame is due, and must neither lose a
// view change nor hang or leak around exec, restore, quit, kill and panics.
// Written for the review of the View-per-frame patch.
package tea

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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
	if m.n == 3 {
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
			if err == nil {
				t.Log("no panic hit (View skipped n==3)")
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
