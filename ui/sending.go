package ui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
)

// The sending screen: a code is being requested. A spinner shows that
// something is happening; Esc abandons the request and goes back.

const sendingTitle = "Sending your code"

func sendingLine(address string) string { return "Sending a code to " + address + "…" }

var cancelKey = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))

type sendingScreen struct {
	from  Screen // where Esc, or a failure, goes back to
	frame int    // index into spinner.Dot.Frames
}

// spinMsg moves the spinner on.
type spinMsg struct{ id uint64 }

func (s *sendingScreen) enter(m *Model) tea.Cmd {
	s.frame = 0
	return s.spin(m)
}

// spin moves the spinner on while the current request is out. Not the
// spinner bubble's own tick: that is a tea.Tick, which outlives the session.
func (s *sendingScreen) spin(m *Model) tea.Cmd {
	return m.after(m.ctx, spinner.Dot.FPS, spinMsg{id: m.reqID})
}

func (s *sendingScreen) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case spinMsg:
		// The tick of an earlier request ends its chain; so does leaving
		// this screen, which hands ticks to a screen that drops them.
		if msg.id != m.reqID {
			return nil
		}
		s.frame = (s.frame + 1) % len(spinner.Dot.Frames)
		return s.spin(m)
	case tea.KeyPressMsg:
		if key.Matches(msg, cancelKey) {
			m.dropRequest()
			return m.show(s.from)
		}
	}
	return nil
}

func (s *sendingScreen) keys(*Model) helpKeys { return helpKeys{&cancelKey} }

func (s *sendingScreen) common(c *frameCache, st *styles, iw int) {
	c.title = fit(st.title.Render(c.titled(sendingTitle)), iw, true)
	c.frames = make([]string, len(spinner.Dot.Frames))
	for i, f := range spinner.Dot.Frames {
		c.frames[i] = st.spinner.Render(f)
	}
}

func (s *sendingScreen) namesAddress() bool { return true }

func (s *sendingScreen) own(c *frameCache, _ *styles, _ int, address string) {
	c.line = sendingLine(address)
}

func (s *sendingScreen) status(*Model) string { return "" }

func (s *sendingScreen) view(_ *Model, c *frameCache, secs []section) []section {
	return append(secs,
		section{prio: prioTitle, fit: &c.title},
		spacer(),
		section{c.frames[s.frame] + c.line, prioInput, nil})
}
