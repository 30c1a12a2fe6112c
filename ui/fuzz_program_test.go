package ui

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/syncbuf"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/otp"
)

// hostileInputs seed the fuzz targets that feed raw terminal input: what a
// broken or hostile terminal sends.
var hostileInputs = []string{
	"",
	"alice@example.com\r",
	"\x9bM:]m", // 8-bit X10 mouse report, once a crash of every SSH session
	"\x9b", "\x9bM", "\x9bM:", "\x9b<0;1", "\x9b200~paste", "\x9d0;title\x9c", "\x90q\x9c", "\x9f", "\x9e", "\x98",
	"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f",
	"\x1b", "\x1b[", "\x1b[M", "\x1b[M ", "\x1b[M !", "\x1b[<", "\x1b[<0;1;1", "\x1b[<0;1;1M", "\x1b[<64;999999;999999m",
	"\x1b[" + strings.Repeat("1;", 500) + "m", "\x1b[" + strings.Repeat("9", 400) + "u",
	"\x1b]11;rgb:ffff/ffff/ffff", "\x1b]11;rgb:ffff/ffff/ffff\x07", "\x1b]" + strings.Repeat("x", 5000),
	"\x1bP>|xterm", "\x1bP1$r0m\x1b\\", "\x1b_Gi=1;OK\x1b\\", "\x1b_" + strings.Repeat("A", 3000),
	"\x1b[97;5u", "\x1b[97:65;2:1u", "\x1b[1;2:3A", "\x1b[57399;1:3u", "\x1b[0u", "\x1b[u",
	"\x1b[200~alice@example.com\x1b[201~", "\x1b[200~" + strings.Repeat("1", 10000), "\x1b[201~", "\x1b[200~\x1b[200~x\x1b[201~",
	"\x1b[I", "\x1b[O", "\x1b[?2026;2$y", "\x1b[12;40R", "\x1b[48;24;80;480;960t",
	"\xff\xfe\xfd", "\xc3\x28", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80",
	"\x00", "\x00\x00\x00\r", "\x7f\x7f\x7f", "\b\b\b", "\t\t", "\x1b\x1b\x1b", "\x1bO", "\x1bOA", "\x1b[1;5", "\r\r\r\r",
}

// programScreens are the screens the fuzz target brings a program to
// before it sends the fuzzed bytes.
var programScreens = []struct {
	name   string
	remote bool // as over SSH: the success screen stays until a key
	reach  func(p *fuzzProgram)
}{
	{"email", false, func(p *fuzzProgram) {}},
	{"code", false, func(p *fuzzProgram) {
		p.write(alice + "\r")
		p.wait("Check your email")
	}},
	{"wrong code", false, func(p *fuzzProgram) {
		p.write(alice + "\r")
		p.wait("Check your email")
		p.write(wrongCode(p.code()) + "\r")
		p.wait("Incorrect code")
	}},
	{"verified", true, func(p *fuzzProgram) {
		p.write(alice + "\r")
		p.wait("Check your email")
		p.write(p.code() + "\r")
		p.wait("Verified")
	}},
}

// FuzzProgram runs the model in a real tea.Program on a fake terminal (a
// pipe in, a buffer out), brings it to one of its screens and then sends it
// arbitrary bytes: whatever the input decoder makes of them reaches Update
// and View. Nothing may panic, and the program must still quit.
func FuzzProgram(f *testing.F) {
	for _, in := range hostileInputs {
		for screen := range programScreens {
			f.Add(uint8(screen), []byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, screen uint8, data []byte) {
		s := programScreens[int(screen)%len(programScreens)]
		p := startFuzzProgram(t, Options{Remote: s.remote})
		p.wait("Prove you own")
		s.reach(p)
		p.writeAsync(data)
		p.finish()
	})
}

// fuzzProgram is one ui program on a fake terminal.
type fuzzProgram struct {
	t       *testing.T
	env     *env
	prog    *tea.Program
	in      *io.PipeReader
	inW     *io.PipeWriter
	out     *lockedBuffer
	done    chan error
	writing sync.WaitGroup
}

func startFuzzProgram(t *testing.T, opts Options) *fuzzProgram {
	e := newEnv(t, otp.Config{})
	in, inW := io.Pipe()
	p := &fuzzProgram{t: t, env: e, in: in, inW: inW, out: &lockedBuffer{}, done: make(chan error, 1)}
	p.prog = tea.NewProgram(New(e.options(opts)),
		tea.WithInput(in), tea.WithOutput(p.out), tea.WithWindowSize(80, 24),
		tea.WithoutSignals(), tea.WithColorProfile(colorprofile.ANSI256))
	go func() {
		_, err := p.prog.Run()
		p.done <- err
	}()
	return p
}

func (p *fuzzProgram) code() string { return p.env.sender.code(p.t, alice) }

func (p *fuzzProgram) write(s string) {
	if _, err := p.inW.Write([]byte(s)); err != nil {
		p.t.Fatalf("writing %q: %v", s, err)
	}
}

// writeAsync writes data without waiting for the program to read it all:
// the data may make it quit halfway.
func (p *fuzzProgram) writeAsync(data []byte) {
	p.writing.Go(func() { _, _ = p.inW.Write(data) })
}

// wait waits until the screen shows text.
func (p *fuzzProgram) wait(text string) {
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(ansi.Strip(p.out.String()), text) {
		select {
		case err := <-p.done:
			p.t.Fatalf("program ended (%v) before showing %q", err, text)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %q", text)
		}
		time.Sleep(time.Millisecond)
	}
}

// finish quits the program and fails the test if it panicked or hung.
func (p *fuzzProgram) finish() {
	p.prog.Quit()
	var err error
	select {
	case err = <-p.done:
	case <-time.After(waitLimit):
		p.prog.Kill()
		p.t.Fatal("the program did not quit")
	}
	_ = p.in.CloseWithError(io.EOF) // unblocks a write the program never read
	p.writing.Wait()
	if errors.Is(err, tea.ErrProgramPanic) {
		p.t.Fatalf("the program panicked: %v", err)
	}
}

// wrongCode returns a code of the same length as code that is not code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// lockedBuffer is a bytes.Buffer the program and the test may use at once.
type lockedBuffer = syncbuf.Buffer
