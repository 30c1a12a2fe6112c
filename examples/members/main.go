// Command members is a wish app for members only: a visitor proves an
// email address with otplogin's gate (serve.Gate) before the app's own
// screen, which greets them by that address.
//
//	go run ./examples/members
//	ssh -p 23235 localhost
//
// It needs no configuration: codes go to a dev mail server embedded in the
// process, which keeps each message in its outbox folder (the log names
// it). Read the newest code for an address with
//
//	go run . outbox you@example.com
//
// from the repository root. A real app gives mail.New its SMTP server
// instead (mail.Config).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	bm "charm.land/wish/v2/bubbletea"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
	"github.com/otplogin/otplogin/ui"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:23235", "address to listen on")
	hostKey := flag.String("host-key", filepath.Join(filepath.Dir(serve.DefaultHostKeyPath()), "members_host_ed25519_key"),
		"host key file, made if missing")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.NewWithOptions(os.Stderr, log.Options{ReportTimestamp: true})
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Fatal("listen", "err", err)
	}
	if err := run(ctx, l, *hostKey, devserver.DefaultOutbox(), logger); err != nil {
		logger.Fatal("members", "err", err)
	}
}

// run serves the app on l until ctx ends, mailing codes to a dev mail
// server whose messages go to outbox.
func run(ctx context.Context, l net.Listener, hostKey, outbox string, logger *log.Logger) error {
	dev, err := devserver.Start(ctx, outbox)
	if err != nil {
		return err
	}
	defer dev.Close()
	sender, err := mail.New(dev.SenderConfig())
	if err != nil {
		return err
	}
	defer sender.Close()
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), sender)
	if err != nil {
		return err
	}
	defer svc.Close()

	// The gate runs otplogin's screens on each session, with the limits
	// and the log of otplogin serve; only a verified visitor goes on.
	gate, err := serve.Gate(serve.GateConfig{
		NewModel: func(s serve.Session) tea.Model {
			return ui.New(ui.Options{
				Service: svc,
				Client:  s.Client,
				Remote:  true, // an SSH visitor: no outbox or log file on screen
				Handoff: true, // the members screen follows at once
				Logger:  s.Logger,
				Context: s.Context(),
			})
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	signer, err := serve.LoadHostKey(hostKey) // made 0600 if missing
	if err != nil {
		return err
	}
	srv, err := wish.NewServer(
		func(s *ssh.Server) error { s.AddHostKey(signer); return nil },
		wish.WithIdleTimeout(5*time.Minute),
		wish.WithMaxTimeout(30*time.Minute),
		// The last middleware runs first: the gate, then the app.
		wish.WithMiddleware(bm.Middleware(members), gate),
	)
	if err != nil {
		return err
	}

	logger.Info("members only", "addr", l.Addr().String(), "outbox", dev.Outbox())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, ssh.ErrServerClosed) {
		return err
	}
	return nil
}

// members is the app behind the gate: only verified visitors reach it, and
// their address is in the session's context.
func members(sess ssh.Session) (tea.Model, []tea.ProgramOption) {
	address, _ := serve.VerifiedAddress(sess.Context())
	return memberScreen{address: address}, nil
}

// memberScreen greets a member until they leave.
type memberScreen struct{ address string }

var titleStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("#7D56F4"))

func (m memberScreen) Init() tea.Cmd { return nil }

func (m memberScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "q", "esc", "ctrl+c":
			return m, tea.Quit
		}
	}
	return m, nil
}

func (m memberScreen) View() tea.View {
	return tea.NewView(fmt.Sprintf("\n  %s\n\n  Welcome, %s.\n\n  Press q to leave.\n",
		titleStyle.Render("Members only"), m.address))
}
