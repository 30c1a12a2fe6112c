package serve_test

import (
	"context"
	"fmt"
	"log"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"

	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
	"github.com/otplogin/otplogin/ui"
)

type nowhere struct{}

func (nowhere) SendCode(context.Context, string, string, time.Time) error { return nil }

// Gate puts the login in front of any wish handler: only a visitor who
// proved an address gets to it, and VerifiedAddress tells it which
// (examples/members is a whole program).
func ExampleGate() {
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), nowhere{}) // a *mail.Sender, for real
	if err != nil {
		log.Fatal(err)
	}
	gate, err := serve.Gate(serve.GateConfig{
		NewModel: func(s serve.Session) tea.Model {
			return ui.New(ui.Options{
				Service: svc, Client: s.Client, Logger: s.Logger, Context: s.Context(),
				Remote: true, Handoff: true,
			})
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	hello := func(sess ssh.Session) {
		address, _ := serve.VerifiedAddress(sess.Context())
		fmt.Fprintf(sess, "Hello, %s!\r\n", address)
	}
	srv, err := wish.NewServer(
		wish.WithAddress("127.0.0.1:23235"),
		wish.WithHostKeyPath("members_host_key"),
		wish.WithIdleTimeout(5*time.Minute),
		wish.WithMaxTimeout(30*time.Minute),
		// The last middleware runs first.
		wish.WithMiddleware(func(ssh.Handler) ssh.Handler { return hello }, gate),
	)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.ListenAndServe())
}
