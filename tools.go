//go:build tools

// Package main pins the module set while packages are being written.
package main

import (
	_ "charm.land/bubbles/v2/textinput"
	_ "charm.land/bubbletea/v2"
	_ "charm.land/lipgloss/v2"
	_ "charm.land/log/v2"
	_ "charm.land/ssh"
	_ "charm.land/wish/v2"
	_ "github.com/charmbracelet/colorprofile"
	_ "github.com/charmbracelet/x/exp/teatest/v2"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "github.com/jordan-wright/email"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/time/rate"
)

func main() {}
