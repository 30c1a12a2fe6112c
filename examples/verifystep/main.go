// Command verifystep is a sign-up form with a verify-your-email step: the
// person types a name, proves an email address with otplogin's screens
// embedded in the form (ui.Options.Embedded), and is signed up.
//
//	go run ./examples/verifystep
//
// It needs no configuration: codes go to a dev mail server embedded in the
// process, which keeps each message in its outbox folder (the screen names
// it). Read the newest code for an address with
//
//	go run . outbox you@example.com
//
// from the repository root, in another terminal. On success it prints the
// name and the address on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/ui"
)

func main() {
	outbox := flag.String("outbox", devserver.DefaultOutbox(), "the dev mail server's outbox folder")
	flag.Parse()
	ctx := context.Background()
	svc, dir, stop, err := devService(ctx, *outbox)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifystep:", err)
		os.Exit(1)
	}
	// The form draws on stderr, so that stdout carries only the result:
	// signup=$(go run ./examples/verifystep).
	final, err := tea.NewProgram(newForm(svc, dir), tea.WithOutput(os.Stderr)).Run()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifystep:", err)
		os.Exit(1)
	}
	f := final.(*form)
	if !f.login.Verified {
		os.Exit(1)
	}
	fmt.Printf("%s <%s>\n", f.name.Value(), f.login.Address)
}

// devService is an otp service that mails codes to a dev mail server
// whose messages go to outbox; stop shuts both down.
func devService(ctx context.Context, outbox string) (svc *otp.Service, dir string, stop func(), err error) {
	dev, err := devserver.Start(ctx, outbox)
	if err != nil {
		return nil, "", nil, err
	}
	sender, err := mail.New(dev.SenderConfig())
	if err != nil {
		_ = dev.Close()
		return nil, "", nil, err
	}
	svc, err = otp.New(otp.Config{}, otp.NewMemoryStore(), sender)
	if err != nil {
		_ = sender.Close()
		_ = dev.Close()
		return nil, "", nil, err
	}
	return svc, dev.Outbox(), func() { _ = svc.Close(); _ = sender.Close(); _ = dev.Close() }, nil
}

// The form's steps.
type step int

const (
	stepName step = iota
	stepEmail
	stepDone
)

// form is the parent program: a name, then the embedded login, then a
// summary.
type form struct {
	step  step
	name  textinput.Model
	email *ui.Model  // the embedded login
	login ui.DoneMsg // how it ended
}

func newForm(svc *otp.Service, outbox string) *form {
	name := textinput.New()
	name.Prompt = "Name: "
	name.CharLimit = 64
	name.Focus()
	return &form{
		name: name,
		email: ui.New(ui.Options{
			Service:   svc,
			Client:    "local",
			DevOutbox: outbox, // shown on the login's screen
			Embedded:  true,   // report ui.DoneMsg instead of quitting
		}),
	}
}

var (
	titleStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("#7D56F4"))
	faintStyle = lipgloss.NewStyle().Faint(true)
)

// headerLines is how many lines the form's header takes above a step.
const headerLines = 1

func (f *form) Init() tea.Cmd { return nil }

func (f *form) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		// The login gets the window less the header.
		f.email.SetSize(msg.Width, msg.Height-headerLines)
		f.name.SetWidth(max(msg.Width-len(f.name.Prompt)-1, 1))
		return f, nil
	case ui.DoneMsg:
		f.login, f.step = msg, stepDone
		return f, nil
	case tea.KeyPressMsg:
		if f.step != stepEmail && (msg.String() == "ctrl+c" || msg.String() == "esc") {
			return f, tea.Quit
		}
	}
	switch f.step {
	case stepName:
		if k, ok := msg.(tea.KeyPressMsg); ok && k.String() == "enter" {
			if strings.TrimSpace(f.name.Value()) == "" {
				return f, nil
			}
			f.step = stepEmail
			f.name.Blur()
			return f, f.email.Init() // the login asks for the background colour
		}
		var cmd tea.Cmd
		f.name, cmd = f.name.Update(msg)
		return f, cmd
	case stepEmail:
		// Everything else is the login's: keys, its requests, its timers.
		_, cmd := f.email.Update(msg)
		return f, cmd
	default:
		if _, ok := msg.(tea.KeyPressMsg); ok {
			return f, tea.Quit
		}
	}
	return f, nil
}

func (f *form) View() tea.View {
	var body string
	switch f.step {
	case stepName:
		body = "\n  What should we call you?\n\n  " + f.name.View() + "\n\n  " + faintStyle.Render("enter next • esc quit")
	case stepEmail:
		body = f.email.View().Content
	case stepDone:
		if f.login.Verified {
			body = fmt.Sprintf("\n  Signed up %s <%s>.\n\n  %s", f.name.Value(), f.login.Address, faintStyle.Render("any key to finish"))
		} else {
			body = "\n  Not signed up: no address was verified.\n\n  " + faintStyle.Render("any key to finish")
		}
	}
	v := tea.NewView(titleStyle.Render(fmt.Sprintf("Sign up · step %d of 3", f.step+1)) + "\n" + body)
	v.AltScreen = true
	return v
}
