package ui

import (
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// The result screen: the code was right. Locally, or when something takes
// the terminal over after the login (Handoff), the program quits at once
// and leaves the success line in the terminal; over SSH the screen stays up
// until a key or a short timer, so the visitor sees it before the session
// ends. An Embedded login reports DoneMsg at once: what comes next is the
// parent's.

const resultExplain = "You can close this session now."

func verifiedText(address string) string { return "Verified " + address }

var closeKey = key.NewBinding(key.WithKeys("enter", "esc", "q", "space"), key.WithHelp("enter", "close"))

// successLinger is how long a Remote success screen stays up without a key.
const successLinger = 10 * time.Second

type resultScreen struct{}

// closeMsg ends a Remote success screen.
type closeMsg struct{ id uint64 }

func (s *resultScreen) enter(m *Model) tea.Cmd {
	m.banner = banner{}
	if m.lastLine() || m.embed {
		return m.end() // View draws the success line as the final frame
	}
	return m.after(m.ctx, successLinger, closeMsg{id: m.reqID})
}

// lastLine says whether the program quits at once on success, leaving
// the success line alone as its last frame.
func (m *Model) lastLine() bool { return (!m.remote || m.handoff) && !m.embed }

func (s *resultScreen) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		if key.Matches(msg, closeKey) {
			return m.end()
		}
	case closeMsg:
		if msg.id == m.reqID {
			return m.end()
		}
	}
	return nil
}

// lastFrame is the last frame of a program that quits on success. It leaves the alternate
// screen, so the line stays in the terminal after the program ends.
func (s *resultScreen) lastFrame(m *Model) tea.View {
	w := m.width
	if w <= 0 {
		w = defaultWidth
	}
	v := tea.NewView(ansi.Truncate(m.successLine(), w, "…") + "\n")
	v.WindowTitle = string(ScreenVerified)
	return v
}

func (m *Model) successLine() string {
	return m.bannerView(banner{toneSuccess, verifiedText(safe(m.address))})
}

func (s *resultScreen) keys(*Model) helpKeys { return helpKeys{&closeKey} }

func (s *resultScreen) common(c *frameCache, st *styles, iw int) {
	c.explain = fit(st.faint.Render(resultExplain), iw, true)
}

func (s *resultScreen) namesAddress() bool { return true }

func (s *resultScreen) own(c *frameCache, st *styles, iw int, address string) {
	// Drawn as an input: never dropped or wrapped.
	c.title = fit(st.success.Render("✓ "+verifiedText(address)), iw, false)
}

func (s *resultScreen) status(*Model) string { return "" }

func (s *resultScreen) view(_ *Model, c *frameCache, secs []section) []section {
	return append(secs,
		section{prio: prioInput, fit: &c.title},
		section{prio: prioExplain, fit: &c.explain})
}
