package ui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
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
	if m.state == stateDone && !m.remote {
		// Local success quits at once. This last frame leaves the
		// alternate screen, so the line stays in the terminal afterwards.
		w := m.width
		if w <= 0 {
			w = defaultWidth
		}
		return tea.NewView(ansi.Truncate(m.successLine(), w, "…") + "\n")
	}
	c := m.cache
	secs := make([]section, 0, 16) // the most any screen has
	if m.outbox != "" {
		secs = append(secs, section{prio: prioDev, fit: &c.dev}, spacer())
	}
	switch m.state {
	case stateEmail:
		secs = m.emailView(secs)
	case stateSending:
		secs = append(secs,
			section{prio: prioTitle, fit: &c.title},
			spacer(),
			section{c.spinner[m.spinFrame] + c.sending, prioInput, nil})
	case stateCode:
		secs = m.codeView(secs)
	case stateDone:
		secs = append(secs,
			section{prio: prioInput, fit: &c.title}, // the success line
			section{prio: prioExplain, fit: &c.explain})
	}
	if m.banner.tone != toneNone {
		secs = append(secs, spacer(), section{m.bannerView(m.banner), prioBanner, nil})
	}
	secs = append(secs, spacer(), section{prio: prioHelp, fit: &c.help})

	v := tea.NewView(m.layout(secs))
	// Locally the alternate screen keeps the shell's screen intact. Over SSH
	// the UI draws inline: the renderer then keeps cells only for the lines
	// the view uses, not the whole window (about 50 KiB less per idle
	// session on a server holding thousands), and the outcome stays in the
	// visitor's scrollback after they leave.
	v.AltScreen = !m.remote
	return v
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
// frameKey, already fitted, and the code screen's countdown line, which
// changes once a second. It is never modified once made (refresh makes a
// new one), so sessions can share one through a Cache.
type frameCache struct {
	key           frameKey
	dev, title    fitted
	explain, help fitted
	spinner       []string // the spinner's frames, styled
	sending       string   // the sending line after the spinner
	statusText    string
	status        fitted
}

type frameKey struct {
	state   state
	st      *styles
	iw      int
	keys    uint8 // which bindings are enabled; their help follows state
	address string
}

// refresh re-renders what the last Update changed the inputs of. Update
// and New call it, so View always finds the cache current.
func (m *Model) refresh() {
	k := frameKey{m.state, m.st, m.innerWidth(), m.enabledKeys(), m.address}
	c := m.cache
	if c == nil || c.key != k {
		c = m.render(k)
	}
	if m.state == stateCode {
		if s := m.codeStatus(); s != c.statusText || c.status.lines == nil {
			nc := *c
			nc.statusText = s
			nc.status = fit(m.st.faint.Render(s), k.iw, true)
			c = &nc
		}
	}
	m.cache = c
}

// render makes the cache for key k: the parts that do not name the address
// come from m.shared when the model has one (made there on a miss), and
// the few that do are added on a copy.
func (m *Model) render(k frameKey) *frameCache {
	common := k
	common.address = ""
	var c *frameCache
	if m.shared != nil {
		c = m.shared.get(common, m.outbox, m.renderCommon)
	} else {
		c = m.renderCommon(common)
	}
	if c.key == k {
		return c // a screen that names no address, with none to name
	}
	nc := *c
	nc.key = k
	switch m.state {
	case stateSending:
		nc.sending = "Sending a code to " + m.shownAddress() + "…"
	case stateCode:
		nc.explain = fit(m.st.text.Render("We sent a code to "+m.shownAddress()+"."), k.iw, true)
	case stateDone:
		nc.title = fit(m.successLine(), k.iw, false) // shown as an input: never dropped or wrapped
	}
	return &nc
}

// renderCommon renders the parts of k's screen that do not name the
// address. It reads the styles, width and key help from m, which k
// describes (refresh makes k from m), so that parts cached under k are the
// same whichever session rendered them.
func (m *Model) renderCommon(k frameKey) *frameCache {
	c := &frameCache{key: k}
	iw := k.iw
	if m.outbox != "" {
		c.dev = fit(m.st.dev.Render("DEV MODE · mail is not sent; it is saved in "+m.outbox), iw, true)
	}
	switch k.state {
	case stateEmail:
		c.title = fit(m.st.title.Render(m.titled("Prove you own an email address")), iw, true)
		c.explain = fit(m.st.text.Render("Type your address and we will mail you a one-time code."), iw, true)
	case stateSending:
		c.title = fit(m.st.title.Render(m.titled("Sending your code")), iw, true)
		c.spinner = make([]string, len(spinner.Dot.Frames))
		for i, f := range spinner.Dot.Frames {
			c.spinner[i] = m.st.spinner.Render(f)
		}
	case stateCode:
		c.title = fit(m.st.title.Render(m.titled("Check your email")), iw, true)
	case stateDone:
		c.explain = fit(m.st.faint.Render("You can close this session now."), iw, true)
	}
	c.help = fit(m.helpView(), iw, true)
	return c
}

// titled puts the application's name, if any, before a screen's title.
func (m *Model) titled(title string) string {
	if m.appName == "" {
		return title
	}
	return m.appName + " · " + title
}

// inputView is the text input as View draws it; an empty, focused one
// comes from the shared Cache when the model has one.
func (m *Model) inputView() string {
	if m.shared == nil || !m.input.Focused() || m.input.Value() != "" {
		return m.input.View()
	}
	// A closure, not the method value m.input.View: that would copy the
	// ~8 KB textinput.Model on every call, hit or miss.
	return m.shared.input(inputKey{m.state, m.st, m.innerWidth(), m.codeLen}, func() string { return m.input.View() })
}

// enabledKeys is one bit per binding that syncKeys enabled.
func (m *Model) enabledKeys() uint8 {
	k := &m.keys
	var bits uint8
	for i, on := range [...]bool{k.Submit.Enabled(), k.Resend.Enabled(), k.Back.Enabled(), k.Close.Enabled(), k.Quit.Enabled()} {
		if on {
			bits |= 1 << i
		}
	}
	return bits
}

// helpView lists the keys of the current screen. The help.Model is made
// per render, not kept: it is 4.6 KB that an idle session need not hold.
func (m *Model) helpView() string {
	h := help.Model{ShortSeparator: " • ", Ellipsis: "…", Styles: m.st.help}
	h.SetWidth(m.innerWidth())
	return h.View(m.keys)
}

func (m *Model) successLine() string {
	return m.bannerView(banner{toneSuccess, "Verified " + m.shownAddress()})
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

func (m *Model) updateDone(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, m.keys.Close) {
		return tea.Quit
	}
	return nil
}
