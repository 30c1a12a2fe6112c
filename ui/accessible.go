package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/otp"
)

// Accessible mode runs the login as plain lines, for screen readers and
// terminals that cannot draw a full-screen UI: a prompt, a typed line, and
// each message a full sentence on a line of its own. No alternate screen,
// no cursor movement, no colour, no spinner or countdown: nothing is ever
// redrawn, so a screen reader reads each line once. The rules, the
// messages and the outcomes are the Model's: the same Service calls, the
// same checks (checkAddress, otp.ParseCode) and the same sentences
// (requestFailure, verifyFailure and the screens' texts).

// LineIO is where accessible mode reads and writes.
type LineIO struct {
	In  io.Reader
	Out io.Writer
	// Echo says In is a terminal in raw mode, as an SSH session with a PTY
	// is: nothing shows what is typed unless the program echoes it. Then
	// RunAccessible echoes what is typed, handles backspace, ctrl+u,
	// ctrl+c and ctrl+d itself, and ends its lines with CR LF. Leave it
	// false for a terminal in its normal mode, a pipe, or an SSH session
	// without a PTY: there the terminal (the client's, over SSH) echoes
	// and edits the line.
	Echo bool
	// Notices, when set, brings sentences for the person from outside the
	// login, such as an SSH server's shutdown notice
	// (serve.Session.Notices). Until RunAccessible returns, each is said
	// at once, on a line of its own and never inside another line; if a
	// prompt was waiting, it is shown again below the notice, with what
	// had been typed at it, which is kept and still submitted. Closing
	// the channel stops the notices.
	Notices <-chan string
}

// Result is how a login in accessible mode ended. Its Verified and Outcome
// answer as the Model's do, so that a server logs and ends both kinds of
// session alike.
type Result struct {
	address string
	outcome string
}

// Verified returns the verified address, if the code was accepted.
func (r Result) Verified() (address string, ok bool) {
	if r.outcome != outcomeVerified {
		return "", false
	}
	return r.address, true
}

// Outcome is the same word Model.Outcome gives.
func (r Result) Outcome() string { return r.outcome }

// The words accessible mode answers to at its prompts. No address (it has
// an @) and no code (digits) can be mistaken for one.
const (
	wordQuit   = "quit"
	wordResend = "resend"
	wordChange = "change"
)

// Accessible mode's own sentences; the rest are the screens'.
const (
	quitText      = "To leave, type quit."
	codeWordsText = "To get a new code, type resend; to use another address, type change."
	deadText      = "This code no longer works."
	cancelledText = "Cancelled: no address was verified."
)

// maxLine bounds a line: more can never be an address or a code, and the
// rest of a longer line is not kept.
const maxLine = maxPasteBytes

// RunAccessible runs one login in accessible mode on term, with opts as
// for New; ctx bounds it and every request, so Options.Context and Cache
// are not used. It returns once the code was accepted, the person left
// (the word quit, ctrl+c, ctrl+d or the end of In), or ctx ended; a caller
// tells the last one apart by ctx.
//
// It reads In in a goroutine of its own, so that it can stop when ctx
// ends; that goroutine ends at once if it is not reading, and otherwise
// when a read on In returns, which closing In (or the SSH session) makes
// happen. Notices are said by another goroutine, which ends before
// RunAccessible returns.
func RunAccessible(ctx context.Context, opts Options, term LineIO) Result {
	con := &console{w: term.Out, echo: term.Echo, nl: "\n"}
	if term.Echo {
		con.nl = "\r\n"
	}
	r := &lineRun{config: newConfig(opts), con: con, outcome: outcomeIdle}
	lines := readLines(term.In, con)
	defer lines.stop()
	r.lines = lines
	if term.Notices != nil {
		defer sayNotices(con, term.Notices)()
	}
	r.run(ctx)
	return Result{address: r.address, outcome: r.outcome}
}

// sayNotices says each notice from notices on con until the returned stop
// is called, which returns once no notice is being said. Nothing here
// reads what the person sends: a receive, a lock, and a write of the
// notice (cleaned by safe) with the prompt and the line the editor kept.
func sayNotices(con *console, notices <-chan string) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case text, ok := <-notices:
				if !ok {
					return
				}
				if text = safe(text); text != "" {
					con.notice(text)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// lineRun is one login in accessible mode.
type lineRun struct {
	config
	lines   *lineReader
	con     *console
	werr    error // the first failed write: the person is gone
	address string
	ticket  otp.Ticket
	dead    bool // the pending code no longer works
	outcome string
	// interrupted: the person pressed Ctrl+C (echo mode), not Esc or quit.
	interrupted bool
}

// step is one prompt and what follows; it returns the next step, or nil
// at the end.
type step func(ctx context.Context) step

func (r *lineRun) run(ctx context.Context) {
	if r.outbox != "" {
		r.say(devModeText(r.outbox))
	}
	r.say(branded(r.appName, emailTitle) + ".")
	r.say(emailExplain)
	r.say(quitText)
	for next := r.askAddress; next != nil && r.werr == nil; {
		next = next(ctx)
	}
	if r.outcome != outcomeVerified {
		r.outcome = outcomeCancelled
		if r.interrupted {
			r.outcome = outcomeInterrupted
		}
		r.say(cancelledText)
	}
}

// say writes text as a line of its own, in one write, so that a notice
// can come before or after it but never inside it.
func (r *lineRun) say(text string) {
	if r.werr == nil {
		r.werr = r.con.write(text + r.con.nl)
	}
}

// ask shows prompt and returns the line typed, trimmed; ok is false when
// the person left or ctx ended.
func (r *lineRun) ask(ctx context.Context, prompt string) (line string, ok bool) {
	if r.werr == nil {
		r.werr = r.con.ask(prompt)
	}
	select {
	case <-ctx.Done():
		r.con.endLine()
		return "", false
	case l := <-r.lines.next():
		if l.err != nil {
			r.con.endLine() // the prompt's line was not ended by a typed one
			r.interrupted = errors.Is(l.err, errInterrupt)
			return "", false
		}
		line = strings.TrimSpace(l.text)
		if strings.EqualFold(line, wordQuit) {
			return "", false
		}
		return line, true
	}
}

func (r *lineRun) askAddress(ctx context.Context) step {
	line, ok := r.ask(ctx, emailPrompt)
	if !ok {
		return nil
	}
	addr, err := checkAddress(line)
	if err != nil {
		r.say(addressProblem(err))
		return r.askAddress
	}
	r.address = addr
	return r.request(ctx, false)
}

// request asks the Service for a code; resend says the person asked from
// the code prompt, where a failure leads back to.
func (r *lineRun) request(ctx context.Context, resend bool) step {
	r.say(strings.TrimSuffix(sendingLine(r.address), "…") + ".")
	t, err := r.call(ctx, func(ctx context.Context) (otp.Ticket, error) {
		return r.svc.Request(ctx, r.address, r.client)
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		v := requestFailure(err, r.now(), r.logFile)
		if v.outcome != "" {
			r.outcome = v.outcome
		}
		r.logRequestFailure(r.address, err)
		r.say(v.text)
		if v.next == nextAddress || !resend {
			return r.askAddress
		}
		return r.askCode
	}
	if t.Address != "" {
		r.address = t.Address
	}
	r.ticket, r.dead, r.outcome = t, false, outcomeSent
	r.logInfo(r.address, "code requested", "already_sent", t.AlreadySent, "maybe_sent", t.MaybeSent)
	now := r.now()
	switch {
	case t.MaybeSent:
		r.say(maybeSentText)
	case resend && !t.AlreadySent:
		r.say(newCodeText)
	}
	if t.AlreadySent {
		r.say("We already sent a code to " + r.address + " at " + t.SentAt.In(now.Location()).Format("15:04") + ".")
	} else {
		r.say(codeExplain(r.address, r.codeLen))
	}
	r.say("The code expires at " + t.ExpiresAt.In(now.Location()).Format("15:04") +
		", in " + inWords(t.ExpiresAt.Sub(now)) + ". " + codeWordsText)
	return r.askCode
}

func (r *lineRun) askCode(ctx context.Context) step {
	line, ok := r.ask(ctx, codePrompt)
	if !ok {
		return nil
	}
	switch {
	case strings.EqualFold(line, wordChange):
		r.say(emailExplain)
		return r.askAddress
	case strings.EqualFold(line, wordResend):
		// The screens offer resend only once the cooldown is over.
		if now := r.now(); now.Before(r.ticket.ResendAt) {
			r.say("You can ask for a new code at " + r.ticket.ResendAt.In(now.Location()).Format("15:04") +
				", in " + inWords(r.ticket.ResendAt.Sub(now)) + ".")
			return r.askCode
		}
		return r.request(ctx, true)
	case r.dead:
		r.say(deadText + " " + codeWordsText)
		return r.askCode
	}
	code, err := otp.ParseCode(line, r.codeLen)
	if err != nil {
		r.say(codeLengthText(r.codeLen))
		return r.askCode
	}
	_, err = r.call(ctx, func(ctx context.Context) (otp.Ticket, error) {
		return otp.Ticket{}, r.svc.Verify(ctx, r.address, r.client, code)
	})
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		r.outcome = outcomeVerified
		r.logInfo(r.address, "verified")
		r.say(verifiedText(r.address) + ".")
		return nil
	}
	v := verifyFailure(err, r.now(), r.logFile)
	if v.outcome != "" {
		r.outcome = v.outcome
	}
	if v.outcome == outcomeUnavailable {
		r.logWarn(r.address, "verify failed", err)
	} else {
		r.logInfo(r.address, "verify failed", "result", r.outcome)
	}
	r.say(v.text)
	switch v.next {
	case nextAddress:
		return r.askAddress
	case nextNewCode:
		r.dead = true
		r.say(codeWordsText)
	}
	return r.askCode
}

// call runs a Service call under the request timeout; there is nothing to
// draw while it waits.
func (r *lineRun) call(ctx context.Context, f func(context.Context) (otp.Ticket, error)) (otp.Ticket, error) {
	if r.svc == nil {
		return otp.Ticket{}, errNoService
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return f(ctx)
}

// line is one line read, or the error that ended the input.
type line struct {
	text string
	err  error
}

var errInterrupt = errors.New("interrupted")

// lineReader reads a line, in a goroutine of its own, each time one is
// asked for; so echoing happens only while a prompt waits, never in the
// middle of the messages that answer the line before.
type lineReader struct {
	want  chan struct{}
	lines chan line
	done  chan struct{}
}

func (lr *lineReader) stop() { close(lr.done) }

// next asks for the next line.
func (lr *lineReader) next() <-chan line {
	select {
	case lr.want <- struct{}{}:
	case <-lr.done:
	}
	return lr.lines
}

// readLines starts a reader of in; in echo mode, it echoes to con as a
// terminal's line discipline would.
func readLines(in io.Reader, con *console) *lineReader {
	lr := &lineReader{want: make(chan struct{}), lines: make(chan line), done: make(chan struct{})}
	ed := &lineEditor{r: bufio.NewReader(in), con: con}
	go func() {
		for {
			select {
			case <-lr.want:
			case <-lr.done:
				return
			}
			text, err := safeReadLine(ed)
			select {
			case lr.lines <- line{text, err}:
			case <-lr.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return lr
}

// safeReadLine is ed.readLine, with a panic (the editor reads what a
// visitor types) turned into the end of the input: the reader goroutine
// lives for one session, and a panic there must end that session only.
func safeReadLine(ed *lineEditor) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("%w: line editor panic: %v", io.ErrUnexpectedEOF, r)
		}
	}()
	return ed.readLine()
}

// console is the terminal that the messages, the prompts, the line
// editor's echo and the notices share, from three goroutines. Each write
// takes its lock, so that none lands inside another; and it keeps the
// prompt that waits and the line typed at it, which the editor changes
// under the same lock, so that a notice can be said on a line of its own
// and the prompt and the line shown again below it exactly as they were:
// the next backspace then erases what it should.
type console struct {
	w    io.Writer
	echo bool   // LineIO.Echo: the editor shows what is typed
	nl   string // how a line ends: CR LF in echo mode

	mu      sync.Mutex
	prompt  string // the prompt waiting for a line; "" when none waits
	typed   []rune // the line typed so far (the editor's)
	midLine bool   // the last write left its line open
	err     error  // the first failed write: the person is gone; nothing more is written
}

// writeLocked writes s unless a write failed before; the caller holds mu.
func (c *console) writeLocked(s string) error {
	if c.err != nil || s == "" {
		return c.err
	}
	_, c.err = io.WriteString(c.w, s)
	c.midLine = !strings.HasSuffix(s, "\n")
	return c.err
}

// write writes s in one piece.
func (c *console) write(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(s)
}

// ask shows prompt, which then waits for a line.
func (c *console) ask(prompt string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prompt = prompt
	return c.writeLocked(prompt)
}

// endLine ends the line that a prompt left open, if nothing ended it
// since, and leaves no prompt waiting.
func (c *console) endLine() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prompt = ""
	if c.midLine {
		_ = c.writeLocked(c.nl)
	}
}

// notice says text at once, on a line of its own, in one write. A prompt
// that was waiting is shown again below it, with the line typed so far
// in echo mode. Without echo the terminal holds what is typed until Enter
// (its line discipline, not this program, edits the line): the prompt is
// shown again alone, and the line the person goes on typing still holds
// what they typed before the notice when they press Enter.
func (c *console) notice(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	if c.midLine {
		b.WriteString(c.nl)
	}
	b.WriteString(text)
	b.WriteString(c.nl)
	if c.prompt != "" {
		b.WriteString(c.prompt)
		if c.echo {
			b.WriteString(string(c.typed))
		}
	}
	_ = c.writeLocked(b.String())
}

// add appends r to the line typed, and shows it in echo mode.
func (c *console) add(r rune) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.typed = append(c.typed, r)
	c.show(string(r))
}

// backspace takes the last rune off the line typed and returns its size
// in bytes; 0 if the line is empty.
func (c *console) backspace() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.typed)
	if n == 0 {
		return 0
	}
	c.erase(c.typed[n-1:])
	size := utf8.RuneLen(c.typed[n-1])
	c.typed = c.typed[:n-1]
	return size
}

// clear takes the whole line typed off (ctrl+u).
func (c *console) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erase(c.typed)
	c.typed = c.typed[:0]
}

// take ends the line typed and returns it; no prompt waits any more.
// ending is what a terminal shows for how the line ended ("\r\n" for
// Enter, "^C"; "" for the end of the input), shown in echo mode.
func (c *console) take(ending string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := string(c.typed)
	c.typed, c.prompt = c.typed[:0], ""
	c.show(ending)
	if !c.echo && strings.HasSuffix(ending, "\n") {
		c.midLine = false // the terminal showed the person's Enter
	}
	return text
}

// show writes s in echo mode; the caller holds mu.
func (c *console) show(s string) {
	if c.echo {
		_ = c.writeLocked(s)
	}
}

// erase takes runes off the end of the echoed line; the caller holds mu.
func (c *console) erase(runes []rune) {
	c.show(strings.Repeat("\b \b", ansi.StringWidth(string(runes))))
}

// lineEditor turns the bytes a person types into lines: CR, LF or CR LF
// end one; backspace and ctrl+u edit it; ctrl+c interrupts; ctrl+d on an
// empty line ends the input. Anything that cannot be shown safely (other
// controls, escape sequences such as arrow keys, format characters,
// invalid UTF-8) is dropped, so that echoing never sends the terminal a
// sequence the person did not see. The line being typed is kept in con,
// where a notice finds it.
type lineEditor struct {
	r      *bufio.Reader
	con    *console
	skipLF bool // the last line ended with CR: a LF right after it is part of that end
}

func (e *lineEditor) readLine() (string, error) {
	size := 0 // bytes in the line typed
	var pending [utf8.UTFMax]byte
	np := 0
	for {
		b, err := e.r.ReadByte()
		if err != nil {
			text := e.con.take("")
			if text != "" && errors.Is(err, io.EOF) {
				return text, nil // a last line without its end
			}
			return "", err
		}
		skipLF := e.skipLF
		e.skipLF = false
		if np > 0 || b >= utf8.RuneSelf {
			pending[np] = b
			np++
			if !utf8.FullRune(pending[:np]) {
				continue
			}
			r, _ := utf8.DecodeRune(pending[:np])
			np = 0
			if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				continue
			}
			if size+utf8.RuneLen(r) <= maxLine {
				size += utf8.RuneLen(r)
				e.con.add(r)
			}
			continue
		}
		switch b {
		case '\n':
			if skipLF {
				continue
			}
			return e.con.take("\r\n"), nil
		case '\r':
			e.skipLF = true
			return e.con.take("\r\n"), nil
		case 0x03: // ctrl+c
			e.con.take("^C")
			return "", errInterrupt
		case 0x04: // ctrl+d
			if size == 0 {
				e.con.take("")
				return "", io.EOF
			}
		case 0x7f, 0x08: // backspace
			size -= e.con.backspace()
		case 0x15: // ctrl+u
			e.con.clear()
			size = 0
		case 0x1b:
			e.skipEscape()
		default:
			if b >= 0x20 && size < maxLine {
				size++
				e.con.add(rune(b))
			}
		}
	}
}

// skipEscape drops the rest of an escape sequence: ESC [ or ESC O, then
// parameters up to a final byte (arrow keys, function keys), or one more
// byte. The bound keeps a hostile stream from holding the line.
func (e *lineEditor) skipEscape() {
	// A sequence arrives in one piece; ESC with nothing after it is the
	// Esc key, and waiting for more would eat the next key.
	if e.r.Buffered() == 0 {
		return
	}
	b, err := e.r.ReadByte()
	if err != nil || b != '[' && b != 'O' {
		return
	}
	for range 32 {
		if e.r.Buffered() == 0 {
			return
		}
		b, err := e.r.ReadByte()
		if err != nil || b >= 0x40 && b <= 0x7e {
			return
		}
	}
}
