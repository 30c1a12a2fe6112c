package ui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// The frame is what every screen shares: the DEV MODE line on top, the
// screen's own sections, the banner with the answer to the last action, a
// notice from outside, the help line at the bottom, all laid out to fit the
// window.

type tone uint8

const (
	toneNone tone = iota
	toneInfo
	toneSuccess
	toneFailure
)

// banner replaces the tutorial's flash message.
type banner struct {
	tone tone
	text string
}

// section is one block of a screen. When the window is too short, the
// sections with the lowest priority go first, so a 40x10 or even 10x3
// window still shows the input and the latest message.
type section struct {
	text string
	prio int
	fit  *fitted // text already fitted (see frameCache); text is then unused
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

func spacer() section { return section{"", prioSpacer, nil} }

// Size assumed until the terminal reports one.
const defaultWidth, defaultHeight = 80, 24

// View implements tea.Model. Stock Bubble Tea calls it after every message
// (the patched copy in third_party once per frame), so it only assembles:
// what changes only with the screen, the width, the theme or the keys was
// rendered by refresh in Update.
func (m *Model) View() tea.View {
	if m.on == ScreenVerified && m.lastLine() {
		return m.result.lastFrame(m)
	}
	c := m.cache
	secs := make([]section, 0, 16) // the most any screen has
	if m.outbox != "" {
		secs = append(secs, section{prio: prioDev, fit: &c.dev}, spacer())
	}
	// Called on each screen type, not through the screen interface, which
	// would move secs to the heap on every frame.
	switch m.on {
	case ScreenEmail:
		secs = m.email.view(m, c, secs)
	case ScreenSending:
		secs = m.sending.view(m, c, secs)
	case ScreenCode:
		secs = m.code.view(m, c, secs)
	case ScreenVerified:
		secs = m.result.view(m, c, secs)
	}
	if m.banner.tone != toneNone {
		secs = append(secs, spacer(), section{m.bannerView(m.banner), prioBanner, nil})
	}
	if m.notice != "" {
		secs = append(secs, spacer(), section{m.bannerView(banner{toneInfo, m.notice}), prioBanner, nil})
	}
	secs = append(secs, spacer(), section{prio: prioHelp, fit: &c.help})

	v := tea.NewView(m.layout(secs))
	if m.embed {
		return v // the terminal is the parent's
	}
	// Locally the alternate screen keeps the shell's screen intact. Over SSH
	// the UI draws inline: the renderer then keeps cells only for the lines
	// the view uses, not the whole window, and the outcome stays in the
	// visitor's scrollback after they leave.
	v.AltScreen = !m.remote
	v.WindowTitle = string(m.on)
	return v
}

// devModeText says where mail goes instead of being sent. The path is
// inside the sentence, so that no full stop seems to be part of it.
func devModeText(outbox string) string {
	return "DEV MODE: mail is saved in " + outbox + " and not sent."
}

// fitted is a section's text as layout draws it: wrapped (unless it is an
// input) and cut to the inner width, and the single line it is cut to when
// even the wrapped sections do not fit.
type fitted struct {
	lines []string
	line  string
}

// fitLines is the section's lines at inner width iw.
func (s section) fitLines(iw int) []string {
	if s.fit != nil {
		return s.fit.lines
	}
	return fitLines(s.text, iw, s.prio != prioInput) // inputs scroll sideways instead
}

// oneLine is the section cut to one line of width iw.
func (s section) oneLine(iw int) string {
	if s.fit != nil {
		return s.fit.line
	}
	return oneLine(s.text, iw)
}

func fit(text string, iw int, wrap bool) fitted {
	f := fitted{fitLines(text, iw, wrap), oneLine(text, iw)}
	if f.line == f.lines[0] {
		f.line = f.lines[0] // one copy for an idle session to hold, not two
	}
	return f
}

func fitLines(text string, iw int, wrap bool) []string {
	if wrap {
		text = lipgloss.Wrap(text, iw, "")
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, iw, "…")
	}
	return lines
}

func oneLine(text string, iw int) string {
	first, _, _ := strings.Cut(text, "\n")
	return ansi.Truncate(first, iw, "…")
}

// frameCache holds the parts of the screen that change only with its
// frameKey, already fitted, and the status line, which changes with the
// clock. It is never modified once made (refresh makes a new one), so
// sessions can share one through a Cache. Screens fill the parts they use.
type frameCache struct {
	key            frameKey
	brand          string   // the application name titles start with
	dev, help      fitted   // the frame's
	title, explain fitted   // the screen's heading
	frames         []string // the sending screen's spinner, styled
	line           string   // a screen's line that names the address
	statusText     string   // the screen's status line, as text
	status         fitted   // and as drawn
}

// titled is a screen's title with the operator's application name, if
// any, before it.
func (c *frameCache) titled(title string) string { return branded(c.brand, title) }

// branded puts an application name, if any, before a title.
func branded(appName, title string) string {
	if appName == "" {
		return title
	}
	return appName + " · " + title
}

// frameKey is everything the parts in a frameCache depend on.
type frameKey struct {
	on      Screen
	st      *styles
	iw      int
	keys    helpKeys
	address string // only for a screen that names it
}

// refresh re-renders what the last Update changed the inputs of. Update
// and New call it, so View always finds the cache current.
func (m *Model) refresh() {
	s := m.screen()
	k := frameKey{on: m.on, st: m.st, iw: m.innerWidth(), keys: s.keys(m)}
	if s.namesAddress() {
		k.address = safe(m.address)
	}
	c := m.cache
	if c == nil || c.key != k {
		c = m.render(s, k)
	}
	if text := s.status(m); text != c.statusText || text != "" && c.status.lines == nil {
		nc := *c
		nc.statusText = text
		nc.status = fit(m.st.faint.Render(text), k.iw, true)
		c = &nc
	}
	m.cache = c
}

// render makes the cache for key k: the parts that do not name the address
// come from m.shared when the model has one (made there on a miss), and
// the ones that do are added on a copy.
func (m *Model) render(s screen, k frameKey) *frameCache {
	common := k
	common.address = ""
	var c *frameCache
	if m.shared != nil {
		c = m.shared.get(common, m.outbox, func(k frameKey) *frameCache { return m.renderCommon(s, k) })
	} else {
		c = m.renderCommon(s, common)
	}
	if c.key == k {
		return c // a screen that names no address
	}
	nc := *c
	nc.key = k
	s.own(&nc, k.st, k.iw, k.address)
	return &nc
}

// renderCommon renders the parts of k's screen that do not name the
// address: they depend on k and the outbox only, so parts cached under k
// are the same whichever session rendered them.
func (m *Model) renderCommon(s screen, k frameKey) *frameCache {
	c := &frameCache{key: k}
	if m.outbox != "" {
		c.dev = fit(k.st.dev.Render(devModeText(m.outbox)), k.iw, true)
	}
	c.brand = m.appName
	s.common(c, k.st, k.iw)
	c.help = fit(helpView(k), k.iw, true)
	return c
}

// helpView lists the keys of k's screen. The help.Model is made per render,
// not kept: an idle session need not hold one.
func helpView(k frameKey) string {
	h := help.Model{ShortSeparator: " • ", Ellipsis: "…", Styles: k.st.help}
	h.SetWidth(k.iw)
	return h.View(k.keys)
}

// inputView is a screen's text input as View draws it; an empty, focused
// one comes from the shared Cache when the model has one.
func (m *Model) inputView(in *textinput.Model) string {
	if m.shared == nil || !in.Focused() || in.Value() != "" {
		return in.View()
	}
	// A closure, not the method value in.View: that would copy the text
	// input on every call, hit or miss.
	return m.shared.input(inputKey{m.on, m.st, m.innerWidth()}, func() string { return in.View() })
}

// fitInputs gives each text input the inner width less its prompt and the
// cursor. The textinput bubble recomputes which part of a long value it
// shows only when the value or the cursor moves, not when its width
// changes; moving the cursor to where it is makes it, so that the end being
// typed stays in sight after a resize.
func (m *Model) fitInputs() {
	iw := m.innerWidth()
	for _, in := range [...]*textinput.Model{&m.email.input, m.codeInput()} {
		if in != nil {
			in.SetWidth(max(iw-len(in.Prompt)-1, 1))
			in.SetCursor(in.Position())
		}
	}
}

func (m *Model) codeInput() *textinput.Model {
	if m.code == nil {
		return nil
	}
	return &m.code.input
}

func (m *Model) bannerView(b banner) string {
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

func (m *Model) innerWidth() int {
	w, _, padX, _ := m.frame()
	return max(w-2*padX, 1)
}

// frame returns the window size and the margins that fit in it: a small
// margin from 40x10 up, none below.
func (m *Model) frame() (w, h, padX, padY int) {
	w, h = m.width, m.height
	if w <= 0 || h <= 0 {
		w, h = defaultWidth, defaultHeight
	}
	if w >= 40 && h >= 10 {
		return w, h, 2, 1
	}
	return w, h, 0, 0
}

// layout fits the sections to the window. It wraps them to its width (or
// takes them as refresh fitted them) and drops the least important ones
// (spacing, help, explanations) until they fit its height; if that is not
// enough it stops wrapping, giving each section one line, and keeps
// dropping. Every line is cut to the width after wrapping, so no line is
// ever wider or taller than the window, whatever the text.
func (m *Model) layout(secs []section) string {
	w, h, padX, padY := m.frame()
	iw, ih := max(w-2*padX, 1), max(h-padY, 1)

	var buf [16][]string
	blocks := buf[:0]
	total := 0
	for _, s := range secs {
		lines := s.fitLines(iw)
		blocks = append(blocks, lines)
		total += len(lines)
	}
	total = dropUntil(secs, blocks, total, ih, prioTitle)
	if total > ih {
		total = 0
		for i, s := range secs {
			if blocks[i] != nil {
				blocks[i] = []string{s.oneLine(iw)}
				total++
			}
		}
		dropUntil(secs, blocks, total, ih, prioInput)
	}

	size, n := padY, 0
	for _, lines := range blocks {
		for _, line := range lines {
			size += padX + len(line) + 1
		}
	}
	var b strings.Builder
	b.Grow(size)
	for range padY {
		b.WriteByte('\n')
	}
	for _, lines := range blocks {
		for _, line := range lines {
			if n == ih {
				return b.String()
			}
			if n > 0 {
				b.WriteByte('\n')
			}
			if line != "" {
				for range padX {
					b.WriteByte(' ')
				}
				b.WriteString(line)
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
