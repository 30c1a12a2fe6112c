package ui

import (
	"errors"
	"fmt"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/internal/mask"
	"github.com/otplogin/otplogin/otp"
)

// maxCodePaste bounds the work a huge paste into the code input can cause.
const maxCodePaste = 256

func (m *Model) updateCode(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, m.keys.Back):
			m.dropRequest()
			m.banner, m.alreadySent = banner{}, false
			return m.show(stateEmail)
		case key.Matches(msg, m.keys.Resend):
			return m.startRequest()
		case key.Matches(msg, m.keys.Submit):
			return m.submitCode()
		}
		if m.codeDead || m.verifying {
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
		m.input, cmd = m.input.Update(msg)
		return cmd
	case tea.PasteMsg:
		if m.codeDead || m.verifying {
			return nil
		}
		if len(msg.Content) > maxCodePaste {
			msg.Content = msg.Content[:maxCodePaste]
		}
		if d := digits(msg.Content); d != "" {
			m.input, _ = m.input.Update(tea.PasteMsg{Content: d})
		}
	}
	return nil
}

func (m *Model) submitCode() tea.Cmd {
	code, err := otp.ParseCode(m.input.Value(), m.codeLen)
	if err != nil {
		// Checked here too so that a typo costs no round trip; the
		// service would answer the same *otp.CodeError.
		m.banner = banner{toneFailure, fmt.Sprintf("Code must be %d digits.", m.codeLen)}
		return nil
	}
	ctx := m.newRequest()
	m.verifying = true
	m.banner = banner{}
	return verifyCmd(ctx, m.cancel, m.svc, m.reqID, m.address, m.client, code)
}

func (m *Model) onVerifyResult(msg verifyResultMsg) tea.Cmd {
	if msg.id != m.reqID || m.state != stateCode || !m.verifying {
		return nil
	}
	m.verifying, m.cancel = false, nil
	m.input.Reset()
	if msg.err == nil {
		m.verified, m.outcome, m.state = true, outcomeVerified, stateDone
		m.banner, m.alreadySent = banner{}, false
		m.input.Blur()
		m.logInfo("verified")
		if !m.remote {
			return tea.Quit // View draws the success line as the final frame
		}
		return m.after(m.ctx, successLinger, closeMsg{id: m.reqID})
	}

	var (
		we *otp.WrongCodeError
		ce *otp.CodeError
		le *otp.LimitError
	)
	m.alreadySent = false
	switch {
	case errors.As(msg.err, &we) && we.AttemptsLeft > 0:
		m.outcome = outcomeWrongCode
		m.banner = banner{toneFailure, "Incorrect code. " + plural(we.AttemptsLeft, "attempt") + " left."}
	case errors.As(msg.err, &we), errors.Is(msg.err, otp.ErrTooManyAttempts):
		m.outcome = outcomeTooMany
		m.kill("Too many wrong codes; this one no longer works. Ask for a new code.")
	case errors.As(msg.err, &ce):
		m.banner = banner{toneFailure, fmt.Sprintf("Code must be %d digits.", ce.Length)}
	case errors.Is(msg.err, otp.ErrExpired):
		m.outcome = outcomeExpired
		m.kill("This code has expired. Ask for a new code.")
	case errors.Is(msg.err, otp.ErrNoCode):
		m.outcome = outcomeNoCode
		m.banner = banner{toneFailure, "No code is waiting for this address. Send a new one."}
		m.logInfo("verify failed", "result", m.outcome)
		return m.show(stateEmail)
	case errors.As(msg.err, &le):
		m.outcome = outcomeLimited
		m.kill(m.limitText(le))
	default:
		m.outcome = outcomeUnavailable
		m.banner = banner{toneFailure, "Service temporarily unavailable, try again."}
		m.logWarn("verify failed", msg.err)
		return nil
	}
	m.logInfo("verify failed", "result", m.outcome)
	// The countdown chain started by show is still running if it has
	// anything left to count; starting another would double it.
	return nil
}

// kill marks the pending code unusable: only a new code (or going back)
// helps now.
func (m *Model) kill(why string) {
	m.codeDead = true
	m.input.Blur()
	m.banner = banner{toneFailure, why}
}

func (m *Model) onTick(msg tickMsg) tea.Cmd {
	if msg.seq != m.tickSeq || m.state != stateCode {
		return nil // an older chain, or the screen is gone: let it die
	}
	if !m.codeDead && !m.verifying && !m.clock.Before(m.ticket.ExpiresAt) {
		m.outcome = outcomeExpired
		m.alreadySent = false
		m.kill("This code has expired. Ask for a new code.")
	}
	return m.nextTick()
}

// nextTick continues the countdown while there is something to count down.
func (m *Model) nextTick() tea.Cmd {
	live := !m.codeDead && m.clock.Before(m.ticket.ExpiresAt)
	if m.state != stateCode || !live && m.canResend() {
		return nil
	}
	return m.after(m.ctx, time.Second, tickMsg{seq: m.tickSeq})
}

// shownAddress is the address as this session may show it.
func (m *Model) shownAddress() string {
	if m.remote {
		return mask.Address(m.address)
	}
	return safe(m.address)
}

func (m *Model) codeView(secs []section) []section {
	c := m.cache
	secs = append(secs,
		section{prio: prioTitle, fit: &c.title},
		section{prio: prioExplain, fit: &c.explain},
		spacer(),
		section{m.inputView(), prioInput, nil},
		section{prio: prioStatus, fit: &c.status})
	if m.banner.tone == toneNone && m.alreadySent {
		at := m.ticket.SentAt.In(m.clock.Location()).Format("15:04")
		next := "resend with ctrl+r"
		if !m.canResend() {
			next = "resend in " + inWords(m.ticket.ResendAt.Sub(m.clock))
		}
		secs = append(secs, spacer(), section{m.bannerView(banner{toneInfo,
			"A code was already sent at " + at + "; enter it, or " + next + "."}), prioBanner, nil})
	}
	return secs
}

// codeStatus is the countdown line under the input.
func (m *Model) codeStatus() string {
	var s string
	switch {
	case m.verifying:
		return "Checking the code…"
	case m.codeDead:
		s = "No usable code"
	default:
		s = "Expires in " + clock(m.ticket.ExpiresAt.Sub(m.clock))
	}
	if m.canResend() {
		return s + " · ctrl+r resend"
	}
	return s + " · resend in " + inWords(m.ticket.ResendAt.Sub(m.clock))
}
