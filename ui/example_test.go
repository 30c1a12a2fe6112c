package ui_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/ui"
)

// nowhere is a Sender that delivers nothing; a real program passes a
// *mail.Sender.
type nowhere struct{}

func (nowhere) SendCode(context.Context, string, string, time.Time) error { return nil }

// An Embedded Model is one step of a parent program: the parent gives it
// a box, forwards it messages while it is shown, and moves on when it
// reports DoneMsg (examples/verifystep is a whole program).
func ExampleNew_embedded() {
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), nowhere{})
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	login := ui.New(ui.Options{Service: svc, Client: "local", Embedded: true})
	login.SetSize(60, 12) // the part of the window the parent leaves it

	v := login.View()
	fmt.Println("alternate screen:", v.AltScreen, "title:", v.WindowTitle != "")
	fmt.Println(strings.Contains(v.Content, "Prove you own an email address"))

	// The person presses Esc: instead of quitting the program, the login
	// reports how it ended, as a message for the parent's Update.
	_, cmd := login.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	fmt.Printf("%+v\n", cmd())
	// Output:
	// alternate screen: false title: false
	// true
	// {Address: Verified:false Outcome:cancelled}
}
