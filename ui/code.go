package ui

import (
	"errors"
	"fmt"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// The code screen: the person types the code from the mail. It counts down
// to the code's expiry and to when a new code may be asked for, and says
// what went wrong after a miss.

// The code screen's texts.
const (
	codeTitle   = "Check your email"
	codePrompt  = "Code: "
	expiredText = "This code has expired. Ask for a new code."
	// After a request, in the banner and in accessible mode.
	maybeSentText = "The mail server did not confirm delivery; if no code arrives, resend."
	newCodeText   = "A new code is on its way; the previous one no longer works."
)

// codeExplain names the address, so that a typo in it shows, and says how
// long the code is: the field has no placeholder, for the reason the email
// field has none (see emailExplain).
func codeExplain(address string, n int) string {
	return fmt.Sprintf("We sent a code to %s. It has %d digits.", address, n)
}

func codeLengthText(n int) string { return fmt.Sprintf("Code must be %d digits.", n) }

// The code screen's keys.
var (
	verifyKey = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "verify"))
	resendKey = key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "resend"))
	changeKey = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "change address"))
)

// maxCodePaste bounds the work a huge paste into the code input can cause.
const maxCodePaste = 256

// codeState is what the code screen is waiting for.
type codeState uint8

const (
	// codeTyping: a code was sent; the person types it.
	codeTyping codeState = iota
	// codeEarlier: the request found a code sent earlier and sent none;
	// the screen says when, so the person looks for that mail or resends.
	codeEarlier
	// codeChecking: Verify is out; the field waits for its answer.
	codeChecking
	// codeDead: expired, out of attempts or limited; only a new code (or
	// another address) helps.
	codeDead
)

type codeScreen struct {
	input   textinput.Model
	value   string // the field's text as of the last change
	state   codeState
	ticket  otp.Ticket // the pending code's times
	tickSeq uint64     // id of the one countdown chain that counts
	codeLen int        // digits in a code
}

// tickMsg drives the countdown.
type tickMsg struct{ seq uint64 }

func newCodeScreen(m *Model) *codeScreen {
	s := &codeScreen{input: m.st.field, codeLen: m.codeLen}
	s.input.Prompt = codePrompt
	// Digits only, with room to spare so that a 7th digit gets "must be
	// 6 digits" instead of vanishing without a word.
	s.input.CharLimit = 2 * m.codeLen
	iw := m.innerWidth()
	s.input.SetWidth(max(iw-len(s.input.Prompt)-1, 1))
	return s
}

// start takes a new code's ticket; the old code, if any, is void.
func (s *codeScreen) start(t otp.Ticket) {
	s.ticket = t
	s.state = codeTyping
	if t.AlreadySent {
		s.state = codeEarlier
	}
	s.input.Reset()
	s.value = ""
}

func (s *codeScreen) enter(m *Model) tea.Cmd {
	if s.state == codeDead {
		s.input.Blur()
	} else {
		s.input.Focus()
	}
	s.tickSeq++ // any tick still in flight belongs to an old chain
	return s.nextTick(m)
}

func (s *codeScreen) canVerify() bool { return s.state != codeDead && s.state != codeChecking }

func (s *codeScreen) canResend(m *Model) bool {
	return s.state != codeChecking && !m.clock.Before(s.ticket.ResendAt)
}

func (s *codeScreen) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tickMsg:
		return s.onTick(m, msg)
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, changeKey):
			m.dropRequest()
			m.banner = banner{}
			return m.show(ScreenEmail)
		case key.Matches(msg, resendKey):
			if s.canResend(m) {
				return m.requestCode(m.address)
			}
			return nil
		case key.Matches(msg, verifyKey):
			if s.canVerify() {
				return s.submit(m)
			}
			return nil
		}
		if !s.canVerify() {
			return nil
		}
		if msg.Text != "" {
			d := digits(msg.Text)
			if d == "" {
				return nil // a space, a dash or a letter: nothing to add
			}
			msg.Text = d
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(msg)
		s.changed(m)
		return cmd
	case tea.PasteMsg:
		if !s.canVerify() {
			return nil
		}
		if len(msg.Content) > maxCodePaste {
			msg.Content = msg.Content[:maxCodePaste]
		}
		if d := digits(msg.Content); d != "" {
			s.input, _ = s.input.Update(tea.PasteMsg{Content: d})
			s.changed(m)
		}
	}
	return nil
}

// changed clears the answer to the last attempt once the field's text
// changed: "Incorrect code" is about the code before.
func (s *codeScreen) changed(m *Model) {
	if v := s.input.Value(); v != s.value {
		s.value = v
		m.banner = banner{}
	}
}

func (s *codeScreen) submit(m *Model) tea.Cmd {
	code, err := otp.ParseCode(s.input.Value(), m.codeLen)
	if err != nil {
		// Checked here too so that a typo costs no round trip; the
		// service would answer the same *otp.CodeError.
		m.banner = banner{toneFailure, codeLengthText(m.codeLen)}
		return nil
	}
	s.state = codeChecking
	return m.verifyCode(code)
}

// onVerify takes Verify's answer.
func (s *codeScreen) onVerify(m *Model, err error) tea.Cmd {
	s.input.Reset()
	s.value = ""
	s.state = codeTyping
	if err == nil {
		m.outcome = outcomeVerified
		m.logInfo("verified")
		return m.show(ScreenVerified)
	}
	v := verifyFailure(err, m.clock, m.logFile)
	if v.outcome != "" {
		m.outcome = v.outcome
	}
	m.banner = banner{toneFailure, v.text}
	if v.outcome == outcomeUnavailable {
		m.logWarn("verify failed", err)
	} else {
		m.logInfo("verify failed", "result", m.outcome)
	}
	switch v.next {
	case nextAddress:
		return m.show(ScreenEmail)
	case nextNewCode:
		s.kill()
	}
	// The countdown chain started by enter is still running if it has
	// anything left to count; starting another would double it.
	return nil
}

// verifyFailure judges a failed Verify; logFile as for requestFailure.
func verifyFailure(err error, now time.Time, logFile string) verdict {
	var (
		we *otp.WrongCodeError
		ce *otp.CodeError
		le *otp.LimitError
	)
	switch {
	case errors.As(err, &we) && we.AttemptsLeft > 0:
		return verdict{outcomeWrongCode, "Incorrect code. " + plural(we.AttemptsLeft, "attempt") + " left.", nextRetry}
	case errors.As(err, &we), errors.Is(err, otp.ErrTooManyAttempts):
		return verdict{outcomeTooMany, "Too many wrong codes; this one no longer works. Ask for a new code.", nextNewCode}
	case errors.As(err, &ce):
		return verdict{"", codeLengthText(ce.Length), nextRetry}
	case errors.Is(err, otp.ErrExpired):
		return verdict{outcomeExpired, expiredText, nextNewCode}
	case errors.Is(err, otp.ErrNoCode):
		return verdict{outcomeNoCode, "No code is waiting for this address. Send a new one.", nextAddress}
	case errors.As(err, &le):
		return verdict{outcomeLimited, limitText(le, now), nextNewCode}
	}
	return verdict{outcomeUnavailable, seeLog(unavailableText, logFile), nextRetry}
}

// kill marks the pending code unusable: only a new code (or going back)
// helps now.
func (s *codeScreen) kill() {
	s.state = codeDead
	s.input.Blur()
}

func (s *codeScreen) onTick(m *Model, msg tickMsg) tea.Cmd {
	if msg.seq != s.tickSeq {
		return nil // an older chain: let it die
	}
	if (s.state == codeTyping || s.state == codeEarlier) && !m.clock.Before(s.ticket.ExpiresAt) {
		m.outcome = outcomeExpired
		m.banner = banner{toneFailure, expiredText}
		s.kill()
	}
	return s.nextTick(m)
}

// nextTick continues the countdown while there is something to count down.
func (s *codeScreen) nextTick(m *Model) tea.Cmd {
	live := s.state != codeDead && m.clock.Before(s.ticket.ExpiresAt)
	if !live && !m.clock.Before(s.ticket.ResendAt) {
		return nil
	}
	return m.after(m.ctx, time.Second, tickMsg{seq: s.tickSeq})
}

func (s *codeScreen) keys(m *Model) helpKeys {
	var h helpKeys
	n := 0
	if s.canVerify() {
		h[n] = &verifyKey
		n++
	}
	if s.canResend(m) {
		h[n] = &resendKey
		n++
	}
	h[n] = &changeKey
	return h
}

func (s *codeScreen) common(c *frameCache, st *styles, iw int) {
	c.title = fit(st.title.Render(c.titled(codeTitle)), iw, true)
}

func (s *codeScreen) namesAddress() bool { return true }

func (s *codeScreen) own(c *frameCache, st *styles, iw int, address string) {
	c.explain = fit(st.text.Render(codeExplain(address, s.codeLen)), iw, true)
}

// status is the countdown line under the field.
func (s *codeScreen) status(m *Model) string {
	var line string
	switch s.state {
	case codeChecking:
		return "Checking the code…"
	case codeDead:
		line = "No usable code"
	default:
		line = "Expires in " + clock(s.ticket.ExpiresAt.Sub(m.clock))
	}
	if s.canResend(m) {
		return line + " · ctrl+r resend"
	}
	return line + " · resend in " + inWords(s.ticket.ResendAt.Sub(m.clock))
}

func (s *codeScreen) view(m *Model, c *frameCache, secs []section) []section {
	secs = append(secs,
		section{prio: prioTitle, fit: &c.title},
		section{prio: prioExplain, fit: &c.explain},
		spacer(),
		section{m.inputView(&s.input), prioInput, nil},
		section{prio: prioStatus, fit: &c.status})
	if s.state == codeEarlier && m.banner.tone == toneNone {
		secs = append(secs, spacer(), section{m.bannerView(banner{toneInfo, s.earlierText(m)}), prioBanner, nil})
	}
	return secs
}

// earlierText tells of the code sent earlier.
func (s *codeScreen) earlierText(m *Model) string {
	at := s.ticket.SentAt.In(m.clock.Location()).Format("15:04")
	next := "resend with ctrl+r"
	if !s.canResend(m) {
		next = "resend in " + inWords(s.ticket.ResendAt.Sub(m.clock))
	}
	return "A code was already sent at " + at + "; enter it, or " + next + "."
}
