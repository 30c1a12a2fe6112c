package ui

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/syncbuf"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/otp"
)

// transcript records what accessible mode writes, and what the person
// typed where a terminal would echo it.
type transcript = syncbuf.Buffer

// script is a person at a terminal in its normal mode: each time the
// program reads, a prompt waits, and the next line is typed (the terminal
// echoes it into the transcript). A line is a func so that it can read the
// code mailed a moment ago.
type script struct {
	tr    *transcript
	lines []func() string
	buf   []byte
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		if len(s.lines) == 0 {
			return 0, io.EOF
		}
		l := s.lines[0]()
		s.lines = s.lines[1:]
		_, _ = s.tr.Write([]byte(l))
		s.buf = []byte(l)
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func typed(l string) func() string { return func() string { return l + "\n" } }

// TestAccessibleLogin runs a whole login in accessible mode, with the
// mistakes a person makes on the way, and keeps the conversation in
// testdata/TestAccessibleLogin.golden.
func TestAccessibleLogin(t *testing.T) {
	leakcheck.Check(t)
	e := newEnv(t, otp.Config{})
	tr := &transcript{}
	// The codes are random; the golden file has placeholders for them.
	var shown []string
	code := func() string {
		c := e.sender.code(t, alice)
		c = c[:1] + " " + c[1:2] + " " + c[2:] // "1 2 3456": spaces are fine
		shown = append(shown, c, "<code>")
		return c + "\n"
	}
	wrongCode := func() string {
		c := wrong(e.sender.code(t, alice))
		shown = append(shown, c, "<wrong code>")
		return c + "\n"
	}
	in := &script{tr: tr, lines: []func() string{
		typed(""),
		typed("alice@localhost"),
		typed("  " + alice + "  "),
		typed("12"),
		wrongCode,
		typed("resend"),
		typed("change"),
		typed(alice),
		code,
	}}
	res := RunAccessible(t.Context(), e.options(Options{DevOutbox: "/home/me/.cache/otplogin/outbox"}), LineIO{In: in, Out: tr})
	if addr, ok := res.Verified(); !ok || addr != alice || res.Outcome() != "verified" {
		t.Fatalf("Verified() = %q, %v; Outcome() = %q\n%s", addr, ok, res.Outcome(), tr)
	}
	out := tr.String()
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("accessible mode wrote escape sequences or CRs:\n%q", out)
	}
	if n := e.sender.count(); n != 1 {
		t.Errorf("mails sent = %d, want 1 (resend refused inside the cooldown, then the code already sent)", n)
	}
	if strings.Contains(e.log.String(), alice) || !strings.Contains(e.log.String(), "a***@example.com") {
		t.Errorf("log does not mask the address:\n%s", e.log)
	}
	teatest.RequireEqualOutput(t, []byte(strings.NewReplacer(shown...).Replace(out)))
}

// TestAccessibleEcho types as an SSH client with a PTY does: raw bytes,
// CR for Enter, backspace and arrow keys, through a pipe. The program
// echoes what is typed, drops the arrows and ends its lines with CR LF.
func TestAccessibleEcho(t *testing.T) {
	leakcheck.Check(t)
	e := newEnv(t, otp.Config{})
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &transcript{}
	done := make(chan Result, 1)
	go func() {
		done <- RunAccessible(t.Context(), e.options(Options{Remote: true}), LineIO{In: inR, Out: out, Echo: true})
	}()
	waitText(t, out, "Email: ")
	if _, err := io.WriteString(inW, "alicx\x7fe@exa\x1b[D\x1b[Cmple.com\r\n"); err != nil {
		t.Fatal(err)
	}
	waitText(t, out, "Code: ")
	if _, err := io.WriteString(inW, e.sender.code(t, alice)+"\r"); err != nil {
		t.Fatal(err)
	}
	wantVerified(t, done, out, alice)
	got := out.String()
	for _, want := range []string{
		"Email: alicx\b \be@example.com\r\n",
		"Sending a code to alice@example.com.\r\n",
		"Verified alice@example.com.\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "\x1b") || strings.Contains(strings.ReplaceAll(got, "\r\n", ""), "\n") {
		t.Errorf("output has escape sequences or bare line feeds:\n%q", got)
	}
}

// waitText waits until out holds text; the bound is against a hang.
func waitText(t *testing.T, out *transcript, text string) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); !strings.Contains(out.String(), text); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %q:\n%q", text, out)
		}
	}
}

// TestAccessibleLeaves checks every way out before a code is accepted:
// each is "cancelled" (status 1), but Ctrl+C is "interrupted" (130), as in
// the screens.
func TestAccessibleLeaves(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name    string
		input   string
		echo    bool
		outcome string
	}{
		{"quit at the address", "QUIT\n", false, "cancelled"},
		{"quit at the code", "alice@example.com\nquit\n", false, "cancelled"},
		{"end of input", "alice@example.com\n", false, "cancelled"},
		{"ctrl+d", "\x04", true, "cancelled"},
		{"ctrl+c while typing", "ali\x03", true, "interrupted"},
		{"ctrl+c at the code", "alice@example.com\r12\x03", true, "interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			out := &transcript{}
			res := RunAccessible(t.Context(), e.options(Options{}), LineIO{In: strings.NewReader(tc.input), Out: out, Echo: tc.echo})
			if _, ok := res.Verified(); ok || res.Outcome() != tc.outcome {
				t.Fatalf("Outcome() = %q, want %q\n%s", res.Outcome(), tc.outcome, out)
			}
			if !strings.HasSuffix(out.String(), cancelledText+map[bool]string{false: "\n", true: "\r\n"}[tc.echo]) {
				t.Errorf("output does not end with %q:\n%q", cancelledText, out)
			}
		})
	}

	t.Run("context ends while a prompt waits", func(t *testing.T) {
		e := newEnv(t, otp.Config{})
		inR, inW := io.Pipe()
		out := &transcript{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan Result, 1)
		go func() { done <- RunAccessible(ctx, e.options(Options{}), LineIO{In: inR, Out: out}) }()
		waitText(t, out, "Email: ")
		cancel()
		select {
		case res := <-done:
			if res.Outcome() != "cancelled" {
				t.Fatalf("Outcome() = %q", res.Outcome())
			}
		case <-time.After(waitLimit):
			t.Fatal("RunAccessible did not return when its context ended")
		}
		inW.Close() // ends the reader's goroutine, which a read held
	})
}

// TestAccessibleNotice sends notices (as an SSH server does when it shuts
// down) while a prompt waits, with part of a line typed, and while a code
// request is under way. Each is said once, on a line of its own; the
// waiting prompt comes again below it with what was typed, which the
// editor then goes on editing (a backspace), and the line submitted holds
// what was typed before the notice.
func TestAccessibleNotice(t *testing.T) {
	leakcheck.Check(t)
	const notice = "The server is shutting down: please finish within 10s."
	for _, tc := range []struct {
		name string
		echo bool
	}{
		// An SSH session's raw PTY: this program echoes and keeps the line.
		{"echo", true},
		// A terminal in its normal mode: it echoes and keeps the line, and
		// sends it whole on Enter; the prompt is shown again alone.
		{"terminal echoes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			inR, inW := io.Pipe()
			defer inW.Close()
			out := &transcript{}
			notices := make(chan string, 1)
			done := make(chan Result, 1)
			go func() {
				done <- RunAccessible(t.Context(), e.options(Options{}), LineIO{In: inR, Out: out, Echo: tc.echo, Notices: notices})
			}()
			nl := "\n"
			if tc.echo {
				nl = "\r\n"
			}
			send := func(s string) {
				t.Helper()
				if _, err := io.WriteString(inW, s); err != nil {
					t.Fatal(err)
				}
			}
			// answer types line at prompt, with a notice after its first n
			// bytes. In echo mode they are typed before the notice and
			// echoed, so the editor holds them when it comes; a terminal
			// in its normal mode would hold them itself until Enter, so
			// there the whole line is sent after it.
			answer := func(prompt, line string, n int) {
				t.Helper()
				first := line[:n]
				if !tc.echo {
					first = ""
				}
				send(first)
				waitText(t, out, prompt+first)
				notices <- notice
				waitText(t, out, prompt+first+nl+notice+nl+prompt+first)
				send(line[len(first):] + nl)
			}

			answer("Email: ", "alx\x7fice@example.com", 3)
			waitText(t, out, "Code: ")
			answer("Code: ", e.sender.code(t, alice), 2)
			wantVerified(t, done, out, alice)
			got := out.String()
			if n := strings.Count(got, notice); n != 2 {
				t.Errorf("notice said %d times, want 2 (once for each sent):\n%q", n, got)
			}
			if tc.echo && !strings.Contains(got, "Email: alx"+nl+notice+nl+"Email: alx\b \bice@example.com"+nl) {
				t.Errorf("the line typed is not shown again below the notice, or not edited there:\n%q", got)
			}
		})
	}

	t.Run("during a request", func(t *testing.T) {
		e := newEnv(t, otp.Config{})
		e.sender.block = true // the mail server stalls: no one else uses the sender yet
		out := &transcript{}
		notices := make(chan string, 1)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan Result, 1)
		in := strings.NewReader(alice + "\n")
		go func() { done <- RunAccessible(ctx, e.options(Options{}), LineIO{In: in, Out: out, Notices: notices}) }()
		sending := "Sending a code to " + alice + ".\n"
		waitText(t, out, sending)
		notices <- notice
		waitText(t, out, sending+notice+"\n")
		cancel()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Fatal("RunAccessible did not return when its context ended")
		}
	})
}

// TestAccessibleDeadCode lets a code expire: the service says so, further
// codes are refused without a round trip, and resend brings a code that
// works.
func TestAccessibleDeadCode(t *testing.T) {
	e := newEnv(t, otp.Config{})
	tr := &transcript{}
	in := &script{tr: tr, lines: []func() string{
		typed(alice),
		func() string { e.clock.Advance(6 * time.Minute); return e.sender.code(t, alice) + "\n" },
		typed("123456"),
		typed("resend"),
		func() string { return e.sender.code(t, alice) + "\n" },
	}}
	res := RunAccessible(t.Context(), e.options(Options{}), LineIO{In: in, Out: tr})
	if _, ok := res.Verified(); !ok {
		t.Fatalf("not verified:\n%s", tr)
	}
	for _, want := range []string{
		expiredText + "\n" + codeWordsText + "\n",
		deadText + " " + codeWordsText + "\n",
		"A new code is on its way; the previous one no longer works.\n",
	} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, tr)
		}
	}
	if n := e.sender.count(); n != 2 {
		t.Errorf("mails sent = %d, want 2", n)
	}
}

// TestAccessibleSaysWhatTheScreensSay: failures read the same in both
// modes, the log file included.
func TestAccessibleSaysWhatTheScreensSay(t *testing.T) {
	const logFile = "/home/me/.cache/otplogin/otplogin.log"
	e := newEnv(t, otp.Config{})
	e.sender.setFail(smtpFailure{})
	tr := &transcript{}
	in := &script{tr: tr, lines: []func() string{typed(alice), typed("quit")}}
	res := RunAccessible(t.Context(), e.options(Options{LogFile: logFile}), LineIO{In: in, Out: tr})
	if res.Outcome() != "cancelled" {
		t.Fatalf("Outcome() = %q", res.Outcome())
	}
	want := requestFailure(&otp.DeliveryError{}, t0, logFile).text + "\n"
	if !strings.Contains(tr.String(), want) || !strings.Contains(want, logFile) {
		t.Errorf("output lacks %q:\n%s", want, tr)
	}
	if strings.Contains(tr.String(), "550") {
		t.Errorf("output shows the SMTP reply:\n%s", tr)
	}
}

// TestAccessibleRefusalNotLoggedAsFailure: a request the limits refuse
// is logged as the screens log it, at debug, not as a warning: a visitor
// who types "change" and another address again and again must not be able
// to flood the operator's log.
func TestAccessibleRefusalNotLoggedAsFailure(t *testing.T) {
	lim := otp.DefaultLimits()
	lim.ClientIssues = 1
	e := newEnv(t, otp.Config{Limits: lim})
	tr := &transcript{}
	in := &script{tr: tr, lines: []func() string{typed(alice), typed(wordChange), typed("bob@example.com"), typed(wordQuit)}}
	RunAccessible(t.Context(), e.options(Options{}), LineIO{In: in, Out: tr})
	if want := "Too many codes"; !strings.Contains(tr.String(), want) {
		t.Fatalf("bob's request was not refused by the limits (no %q):\n%s", want, tr)
	}
	if logs := e.log.String(); strings.Contains(logs, "WARN") || !strings.Contains(logs, "code requested") {
		t.Errorf("want alice's request logged and no warning for the refusal:\n%s", logs)
	}
}

// FuzzLineEditor feeds arbitrary bytes to the line editor with echo on:
// nothing it echoes or returns may hold a control character or an escape
// sequence.
func FuzzLineEditor(f *testing.F) {
	for _, s := range []string{"alice@example.com\r", "a\x7fb\x15c\r\n", "\x1b[31mred\x1b]0;t\x07\r", "\xc2\x9b31m\r", "\u202e\r", "\xff\xfe\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var echo bytes.Buffer
		ed := &lineEditor{r: newReader(s), con: &console{w: &echo, echo: true, nl: "\r\n"}}
		for range 100 {
			l, err := ed.readLine()
			if r, bad := hasUnsafe(l); bad {
				t.Fatalf("line holds %U: %q", r, l)
			}
			if err != nil {
				break
			}
		}
		cleaned := strings.NewReplacer("\r\n", "", "\b", "", "^C", "").Replace(echo.String())
		if r, bad := hasUnsafe(cleaned); bad {
			t.Fatalf("echo holds %U: %q", r, echo.String())
		}
	})
}

func newReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// wantVerified waits for RunAccessible's result on done and fails unless
// it verified want; out is shown on failure.
func wantVerified(t *testing.T, done <-chan Result, out fmt.Stringer, want string) {
	t.Helper()
	select {
	case res := <-done:
		if addr, ok := res.Verified(); !ok || addr != want {
			t.Fatalf("Verified() = %q, %v\n%q", addr, ok, out)
		}
	case <-time.After(waitLimit):
		t.Fatalf("no result; output:\n%q", out)
	}
}
