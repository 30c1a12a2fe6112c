package ui

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// maxPasteBytes bounds the work a huge paste can cause: more than this can
// never become a valid address, so the rest is not even looked at.
const maxPasteBytes = 4096

func (m *Model) updateEmail(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, m.keys.Back):
			return m.quit(outcomeCancelled)
		case key.Matches(msg, m.keys.Submit):
			return m.submitEmail()
		}
		if msg.Text != "" {
			if _, removed := clean(msg.Text); removed {
				m.refuse("Typed", msg.Text)
				return nil
			}
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		m.emailEdited()
		return cmd
	case tea.PasteMsg:
		m.pasteEmail(msg.Content)
	}
	return nil
}

// pasteEmail inserts a paste, trimmed and cut to the input's limit. A paste
// with characters that cannot be shown safely (escape sequences, other
// controls, bidi overrides, invalid UTF-8) is refused whole: repairing it
// would send an address the user never saw.
func (m *Model) pasteEmail(content string) {
	long := len(content) > maxPasteBytes
	if long {
		content = content[:maxPasteBytes]
	}
	text, removed := clean(content)
	if removed {
		m.refuse("Pasted", content)
		return
	}
	text = strings.TrimSpace(text) // a copied line often ends in a newline
	room := m.input.CharLimit - utf8.RuneCountInString(m.input.Value())
	text, cut := firstRunes(text, room)
	m.notice = ""
	if long || cut {
		m.notice = fmt.Sprintf("The pasted text was too long; only the first %d characters were kept.", m.input.CharLimit)
	}
	if text != "" {
		m.input, _ = m.input.Update(tea.PasteMsg{Content: text})
	}
	// A paste is a finished answer, not one typed halfway: judge it now.
	m.emailTried = true
	m.emailEdited()
}

// refuse leaves the input as it was and says why, in the words otp uses
// for an address with the same problem.
func (m *Model) refuse(how, raw string) {
	reason := "contains control characters"
	var ae *otp.AddressError
	if _, err := otp.NormalizeAddress(strings.TrimSpace(raw)); errors.As(err, &ae) {
		reason = ae.Reason
	}
	m.notice = how + " text ignored: it " + safe(reason) + "."
}

// emailEdited re-validates after every change once the first Enter was
// pressed: the message shows only from then on, so nobody is scolded for
// an address half typed, and until then submitEmail is the one to judge.
func (m *Model) emailEdited() {
	m.banner = banner{}
	m.emailErr = nil
	if v := m.input.Value(); v != "" && m.emailTried {
		_, m.emailErr = otp.NormalizeAddress(v)
	}
}

func (m *Model) submitEmail() tea.Cmd {
	m.emailTried = true
	v := m.input.Value()
	if strings.TrimSpace(v) == "" {
		m.emailErr = errEmpty
		return nil
	}
	addr, err := otp.NormalizeAddress(v)
	if err != nil {
		m.emailErr = err
		return nil
	}
	m.emailErr, m.notice = nil, ""
	m.address = addr
	return m.startRequest()
}

var errEmpty = errors.New("empty address")

// emailProblem is the validation message under the input, or "".
func (m *Model) emailProblem() string {
	if !m.emailTried || m.emailErr == nil {
		return ""
	}
	var ae *otp.AddressError
	switch {
	case errors.Is(m.emailErr, errEmpty):
		return "Type your email address, then press enter."
	case errors.As(m.emailErr, &ae):
		return "The address " + safe(ae.Reason) + "."
	}
	return "That is not a valid address."
}

func (m *Model) emailView(secs []section) []section {
	c := m.cache
	secs = append(secs,
		section{prio: prioTitle, fit: &c.title},
		section{prio: prioExplain, fit: &c.explain},
		spacer(),
		section{m.inputView(), prioInput, nil})
	if p := m.emailProblem(); p != "" {
		secs = append(secs, section{m.st.hint.Render("✗ " + p), prioHint, nil})
	}
	if m.notice != "" {
		secs = append(secs, section{m.st.hint.Render(m.notice), prioHint, nil})
	}
	return secs
}
