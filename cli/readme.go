package cli

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The README's table of settings sits between these lines; TestREADME
// checks it against the table (go test ./cli -run README -update rewrites
// it).
const (
	readmeBegin = "<!-- settings table: generated from cli/table.go by go test ./cli -run README -update -->"
	readmeEnd   = "<!-- end of settings table -->"
)

// settingsMarkdown is the README's table of settings.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| Variable | Flag | Default | Used by | What it does |\n|---|---|---|---|---|\n")
	for _, s := range table {
		cell := func(v string) { b.WriteString(" " + v + " |") }
		b.WriteString("|")
		cell(code(s.Env))
		cell(code(s.flagName()))
		switch {
		case s.Default != "":
			cell(s.Default)
		default:
			cell(code(s.defaultText()))
		}
		cell(strings.Join(s.For.names(), ", "))
		what := sentence(s.Help)
		if w := s.want(); w != "" {
			what += " Must be " + w + "."
		}
		if s.More != "" {
			what += " " + s.More
		}
		cell(strings.ReplaceAll(what, "|", `\|`))
		b.WriteString("\n")
	}
	return b.String()
}

// code is v in backticks, or "" for "".
func code(v string) string {
	if v == "" {
		return ""
	}
	return "`" + v + "`"
}

// sentence is s with a capital and a full stop.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
