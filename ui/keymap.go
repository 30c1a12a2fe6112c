package ui

import "charm.land/bubbles/v2/key"

// Each screen defines its own key bindings next to what they do (sendKey
// in email.go, resendKey in code.go, ...); quitKey (ui.go) works on every
// screen. Bindings are package variables that no session changes: a
// screen lists the ones that work now (screen.keys), so the help line
// never offers a key that would be ignored.
//
// All keys are plain control characters or Enter/Esc, which every terminal
// and every SSH client sends the same way.

// helpKeys are the bindings a screen lists in the help line, in order, nil
// after the last; the frame adds quitKey. An array of pointers so that it
// can be part of the frame cache's key.
type helpKeys [3]*key.Binding

// ShortHelp implements help.KeyMap.
func (h helpKeys) ShortHelp() []key.Binding {
	bs := make([]key.Binding, 0, len(h)+1)
	for _, b := range h {
		if b != nil {
			bs = append(bs, *b)
		}
	}
	return append(bs, quitKey)
}

// FullHelp implements help.KeyMap.
func (h helpKeys) FullHelp() [][]key.Binding { return [][]key.Binding{h.ShortHelp()} }
