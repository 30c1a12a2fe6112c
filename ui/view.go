package ui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// section is one block of a screen. When the window is too short, the
// sections with the lowest priority go first, so a 40x10 or even 10x3
// window still shows the input and the latest message.
type section struct {
	text string
	prio int
}

// Priorities, least important first.
const (
	prioSpacer = iota
	prioHelp
	prioExplain
	prioDev
	prioTitle
	prioStatus
	prioHint
	prioBanner
	prioInput // never dropped
)

func spacer() section { return section{"", prioSpacer} }

// Size assumed until the terminal reports one.
const defaultWidth, defaultHeight = 80, 24

// View implements tea.Model.
func (m Model) View() tea.View {
	if m.state == stateDone && !m.remote {
		// Local success quits at once. This last frame leaves the
		// alternate screen, so the line stays in the terminal afterwards.
		w := m.width
		if w <= 0 {
			w = defaultWidth
		}
		return tea.NewView(ansi.Truncate(m.successLine(), w, "…") + "\n")
	}
	var secs []section
	if m.outbox != "" {
		secs = append(secs,
			section{m.st.dev.Render("DEV MODE · mail is not sent; it is saved in " + m.outbox), prioDev},
			spacer())
	}
	switch m.state {
	case stateEmail:
		secs = append(secs, m.emailView()...)
	case stateSending:
		secs = append(secs,
			section{m.st.title.Render("Sending your code"), prioTitle},
			spacer(),
			section{m.spin.View() + "Sending a code to " + m.shownAddress() + "…", prioInput})
	case stateCode:
		secs = append(secs, m.codeView()...)
	case stateDone:
		secs = append(secs,
			section{m.successLine(), prioInput},
			section{m.st.faint.Render("You can close this session now."), prioExplain})
	}
	if m.banner.tone != toneNone {
		secs = append(secs, spacer(), section{m.bannerView(m.banner), prioBanner})
	}
	secs = append(secs, spacer(), section{m.helpView(), prioHelp})

	v := tea.NewView(m.layout(secs))
	v.AltScreen = true
	return v
}

// helpView lists the keys of the current screen. The help.Model is made
// per frame, not kept: it is 4.6 KB that an idle session need not hold.
func (m Model) helpView() string {
	h := help.Model{ShortSeparator: " • ", Ellipsis: "…", Styles: m.st.help}
	h.SetWidth(m.innerWidth())
	return h.View(m.keys)
}

func (m Model) successLine() string {
	return m.bannerView(banner{toneSuccess, "Verified " + m.shownAddress()})
}

func (m Model) bannerView(b banner) string {
	switch b.tone {
	case toneSuccess:
		return m.st.success.Render("✓ " + b.text)
	case toneFailure:
		return m.st.failure.Render("✗ " + b.text)
	case toneInfo:
		return m.st.info.Render("• " + b.text)
	}
	return ""
}

func (m Model) innerWidth() int {
	w, _, padX, _ := m.frame()
	return max(w-2*padX, 1)
}

// frame returns the window size and the margins that fit in it: a small
// margin from 40x10 up, none below.
func (m Model) frame() (w, h, padX, padY int) {
	w, h = m.width, m.height
	if w <= 0 || h <= 0 {
		w, h = defaultWidth, defaultHeight
	}
	if w >= 40 && h >= 10 {
		return w, h, 2, 1
	}
	return w, h, 0, 0
}

// layout fits the sections to the window. It wraps them to its width and
// drops the least important ones (spacing, help, explanations) until they
// fit its height; if that is not enough it stops wrapping, giving each
// section one line, and keeps dropping. Every line is cut to the width last,
// so no line is ever wider or taller than the window, whatever the text.
func (m Model) layout(secs []section) string {
	w, h, padX, padY := m.frame()
	iw, ih := max(w-2*padX, 1), max(h-padY, 1)

	blocks := make([][]string, len(secs))
	total := 0
	for i, s := range secs {
		text := s.text
		if s.prio != prioInput { // the inputs scroll sideways instead
			text = lipgloss.Wrap(text, iw, "")
		}
		blocks[i] = strings.Split(text, "\n")
		total += len(blocks[i])
	}
	total = dropUntil(secs, blocks, total, ih, prioTitle)
	if total > ih {
		total = 0
		for i, s := range secs {
			if blocks[i] != nil {
				blocks[i] = strings.Split(s.text, "\n")[:1]
				total++
			}
		}
		dropUntil(secs, blocks, total, ih, prioInput)
	}

	var b strings.Builder
	b.WriteString(strings.Repeat("\n", padY))
	margin := strings.Repeat(" ", padX)
	n := 0
	for _, lines := range blocks {
		for _, line := range lines {
			if n == ih {
				return b.String()
			}
			if n > 0 {
				b.WriteByte('\n')
			}
			if line != "" {
				b.WriteString(margin)
				b.WriteString(ansi.Truncate(line, iw, "…"))
			}
			n++
		}
	}
	return b.String()
}

// dropUntil removes the least important blocks below priority limit, the
// lowest ones first, until total lines fit in h; it returns the new total.
func dropUntil(secs []section, blocks [][]string, total, h, limit int) int {
	for total > h {
		drop := -1
		for i, s := range secs {
			if blocks[i] != nil && s.prio < limit && (drop < 0 || s.prio <= secs[drop].prio) {
				drop = i // the last of the least important
			}
		}
		if drop < 0 {
			break
		}
		total -= len(blocks[drop])
		blocks[drop] = nil
	}
	return total
}

func (m Model) updateDone(msg tea.Msg) (Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, m.keys.Close) {
		return m, tea.Quit
	}
	return m, nil
}
