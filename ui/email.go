package ui

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// The email screen: the person types the address the code goes to. Its
// field keeps what was typed for the whole session, so going back from the
// code screen shows the address again.

// The email screen's texts. The example address is in the explanation, not
// a placeholder in the field: wherever colour is off (NO_COLOR, TERM=dumb) a
// placeholder looks typed in, and people type after it or think the field
// is filled.
const (
	emailTitle   = "Prove you own an email address"
	emailExplain = "Type your address (like you@example.com) to get a code."
	emailPrompt  = "Email: "
)

// The email screen's keys.
var (
	sendKey  = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send code"))
	leaveKey = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "quit"))
)

// maxAddress is the longest address SMTP allows (RFC 5321), in characters
// (only ASCII ones are accepted).
const maxAddress = 254

// maxPasteBytes bounds the work a huge paste can cause: more than this can
// never become a valid address, so the rest is not even looked at.
const maxPasteBytes = 4096

// emailPhase says whether the address is judged as it changes.
type emailPhase uint8

const (
	// emailTyping: nothing was submitted yet, so an address half typed
	// draws no complaint (unless it is already too long).
	emailTyping emailPhase = iota
	// emailJudged: Enter was pressed or a whole address pasted; from now
	// on the address is checked at every change.
	emailJudged
)

type emailScreen struct {
	input   textinput.Model
	value   string // the field's text as of the last change
	phase   emailPhase
	problem error  // what is wrong with the address, or nil
	notice  string // what input sanitising did, e.g. a paste refused
}

var (
	errEmpty   = errors.New("empty address")
	errTooLong = errors.New("address too long")
)

func (s *emailScreen) init(st *styles) {
	s.input = st.field
	s.input.Prompt = emailPrompt
	// One over the limit, so that typing or pasting a longer address says
	// it is too long instead of stopping without a word.
	s.input.CharLimit = maxAddress + 1
	s.input.Focus()
}

func (s *emailScreen) enter(*Model) tea.Cmd {
	s.input.Focus()
	return nil
}

func (s *emailScreen) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, leaveKey):
			return m.quit(outcomeCancelled)
		case key.Matches(msg, sendKey):
			return s.submit(m)
		}
		if msg.Text != "" {
			if _, removed := clean(msg.Text); removed {
				s.refuse("Typed", msg.Text)
				return nil
			}
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(msg)
		s.changed(m)
		return cmd
	case tea.PasteMsg:
		s.paste(m, msg.Content)
	}
	return nil
}

// paste inserts a paste, trimmed and cut to the input's limit. A paste with
// characters that cannot be shown safely (escape sequences, other
// controls, bidi overrides, invalid UTF-8) is refused whole: repairing it
// would send an address the person never saw.
func (s *emailScreen) paste(m *Model, content string) {
	if len(content) > maxPasteBytes {
		content = content[:maxPasteBytes]
	}
	text, removed := clean(content)
	if removed {
		s.refuse("Pasted", content)
		return
	}
	text = strings.TrimSpace(text) // a copied line often ends in a newline
	text, _ = firstRunes(text, s.input.CharLimit-utf8.RuneCountInString(s.input.Value()))
	if text != "" {
		s.input, _ = s.input.Update(tea.PasteMsg{Content: text})
	}
	// A paste is a finished answer, not one typed halfway: judge it now.
	s.phase = emailJudged
	if !s.changed(m) {
		s.judge()
	}
}

// refuse leaves the input as it was and says why, in the words otp uses
// for an address with the same problem.
func (s *emailScreen) refuse(how, raw string) {
	reason := "contains control characters"
	var ae *otp.AddressError
	if _, err := otp.NormalizeAddress(strings.TrimSpace(raw)); errors.As(err, &ae) {
		reason = ae.Reason
	}
	s.notice = how + " text ignored: it " + safe(reason) + "."
}

// changed clears what was said about the old address once the field's text
// changed (the banner of a failed request too), and judges the new one. It
// reports whether the text changed.
func (s *emailScreen) changed(m *Model) bool {
	v := s.input.Value()
	if v == s.value {
		return false
	}
	s.value = v
	s.notice = ""
	m.banner = banner{}
	s.judge()
	return true
}

// judge sets problem for the field's text: always when it is too long,
// which more typing cannot mend, and otherwise only once judged.
func (s *emailScreen) judge() {
	s.problem = nil
	switch v := s.value; {
	case utf8.RuneCountInString(v) > maxAddress:
		s.problem = errTooLong
	case s.phase == emailJudged && v != "":
		_, s.problem = otp.NormalizeAddress(v)
	}
}

// judged shows err, the Service's verdict on the address, under the field.
func (s *emailScreen) judged(err error) {
	s.phase = emailJudged
	s.problem = err
}

func (s *emailScreen) submit(m *Model) tea.Cmd {
	s.phase = emailJudged
	v := s.input.Value()
	addr, err := checkAddress(v)
	if err != nil {
		s.problem = err
		return nil
	}
	s.problem, s.notice = nil, ""
	return m.requestCode(addr)
}

// checkAddress is what an address typed in full must pass before a code is
// requested; the screens and accessible mode both use it.
func checkAddress(v string) (string, error) {
	switch {
	case strings.TrimSpace(v) == "":
		return "", errEmpty
	case utf8.RuneCountInString(v) > maxAddress:
		return "", errTooLong
	}
	return otp.NormalizeAddress(v)
}

// addressProblem is the sentence for what is wrong with an address.
func addressProblem(err error) string {
	var ae *otp.AddressError
	switch {
	case errors.Is(err, errEmpty):
		return "Type your email address, then press enter."
	case errors.Is(err, errTooLong):
		return fmt.Sprintf("The address is too long: an email address has at most %d characters.", maxAddress)
	case errors.As(err, &ae):
		return "The address " + safe(ae.Reason) + "."
	}
	return "That is not a valid address."
}

func (s *emailScreen) keys(*Model) helpKeys { return helpKeys{&sendKey, &leaveKey} }

func (s *emailScreen) common(c *frameCache, st *styles, iw int) {
	c.title = fit(st.title.Render(c.titled(emailTitle)), iw, true)
	c.explain = fit(st.text.Render(emailExplain), iw, true)
}

func (s *emailScreen) namesAddress() bool                    { return false }
func (s *emailScreen) own(*frameCache, *styles, int, string) {}
func (s *emailScreen) status(*Model) string                  { return "" }

func (s *emailScreen) view(m *Model, c *frameCache, secs []section) []section {
	secs = append(secs,
		section{prio: prioTitle, fit: &c.title},
		section{prio: prioExplain, fit: &c.explain},
		spacer(),
		section{m.inputView(&s.input), prioInput, nil})
	if s.problem != nil {
		secs = append(secs, section{m.st.hint.Render("✗ " + addressProblem(s.problem)), prioHint, nil})
	}
	if s.notice != "" {
		secs = append(secs, section{m.st.hint.Render(s.notice), prioHint, nil})
	}
	return secs
}
