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
	return &styles{
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
