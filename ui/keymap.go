package ui

import "charm.land/bubbles/v2/key"

// keyMap holds every key the model answers to. syncKeys enables, per
// screen, only the keys that do something there, so the help bar never
// offers a key that is ignored.
//
// All keys are plain control characters or Enter/Esc, which every terminal
// and every SSH client sends the same way.
type keyMap struct {
	Submit key.Binding // enter: send the address / check the code
	Resend key.Binding // ctrl+r: mail a new code (after the cooldown)
	Back   key.Binding // esc: quit on the email screen, go back elsewhere
	Close  key.Binding // any listed key closes the success screen over SSH
	Quit   key.Binding // ctrl+c: quit from anywhere
}

func defaultKeyMap() keyMap {
	return keyMap{
		Submit: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send code")),
		Resend: key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "resend")),
		Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "quit")),
		Close:  key.NewBinding(key.WithKeys("enter", "esc", "q", "space"), key.WithHelp("enter", "close")),
		Quit:   key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
	}
}

// ShortHelp implements help.KeyMap; disabled bindings are skipped by help.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Submit, k.Resend, k.Back, k.Close, k.Quit}
}

// FullHelp implements help.KeyMap.
func (k keyMap) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }
