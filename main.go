// Command otplogin proves that a person owns an email address: they type
// the address, a one-time code is mailed to it, they type the code, and
// otplogin says yes or no.
//
//	otplogin             the login in this terminal; prints the verified address
//	otplogin serve       the same login for anyone who runs ssh -p 23234 host
//	otplogin mail-test   send one test message with the current mail settings
//	otplogin load        drive real SSH logins against a local serve
//
// Package cli holds the command line: the settings, the commands and the
// exit statuses (otplogin --help, otplogin man).
package main

import (
	"os"

	"github.com/otplogin/otplogin/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
