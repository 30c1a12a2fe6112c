package ui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
)

// styles is one colour theme. Styles always render truecolor SGR; the
// program's renderer downsamples them to the terminal's profile and strips
// them under NO_COLOR, so nothing here looks at the environment.
type styles struct {
	title, text, faint, dev, info, success, failure, hint, spinner lipgloss.Style
	input                                                          textinput.Styles
	help                                                           help.Styles
	// field is an empty text input with these styles, which every screen
	// copies for its own: textinput.New renders a set of default styles
	// only for them to be replaced, which made a new field dear enough
	// to show in a server's profile. A copy shares nothing it changes:
	// the cursor never blinks, and the rest is values and slices that
	// textinput only reads.
	field textinput.Model
}

// themes holds the light [0] and dark [1] themes. They are built once and
// never modified; every Model points at one of them, which keeps an idle
// session from carrying its own copy of a dozen styles.
var themes = [2]*styles{newStyles(false), newStyles(true)}

func theme(isDark bool) *styles {
	if isDark {
		return themes[1]
	}
	return themes[0]
}

func newStyles(isDark bool) *styles {
	ld := lipgloss.LightDark(isDark)
	var (
		accent = ld(lipgloss.Color("#5A56E0"), lipgloss.Color("#8B87FF"))
		subtle = ld(lipgloss.Color("#6B6B6B"), lipgloss.Color("#9A9A9A"))
		green  = ld(lipgloss.Color("#1B7F3B"), lipgloss.Color("#5FD38D"))
		red    = ld(lipgloss.Color("#B3261E"), lipgloss.Color("#FF7A70"))
		yellow = ld(lipgloss.Color("#8A5A00"), lipgloss.Color("#F2C94C"))
		blue   = ld(lipgloss.Color("#1F5FA8"), lipgloss.Color("#7FB6F0"))
	)
	in := textinput.DefaultStyles(isDark)
	// A blinking cursor redraws every idle session twice a second; a static
	// one costs nothing.
	in.Cursor.Blink = false
	in.Cursor.Color = accent
	in.Focused.Prompt = lipgloss.NewStyle().Foreground(accent).Bold(true)
	in.Blurred.Prompt = lipgloss.NewStyle().Foreground(subtle)
	field := textinput.New()
	field.SetStyles(in)
	// ctrl+v would read the clipboard of the machine running the program,
	// which over SSH is the server's; terminals paste with bracketed paste
	// (tea.PasteMsg) anyway.
	field.KeyMap.Paste.SetEnabled(false)
	return &styles{
		field:   field,
		title:   lipgloss.NewStyle().Bold(true).Foreground(accent),
		text:    lipgloss.NewStyle(),
		faint:   lipgloss.NewStyle().Foreground(subtle),
		dev:     lipgloss.NewStyle().Bold(true).Foreground(yellow),
		info:    lipgloss.NewStyle().Foreground(blue),
		success: lipgloss.NewStyle().Bold(true).Foreground(green),
		failure: lipgloss.NewStyle().Bold(true).Foreground(red),
		hint:    lipgloss.NewStyle().Foreground(red),
		spinner: lipgloss.NewStyle().Foreground(accent),
		input:   in,
		help:    help.DefaultStyles(isDark),
	}
}
