package load

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
	"github.com/otplogin/otplogin/ui"
)

// stack is the real otplogin SSH demo, run in-process: the otp service on
// the memory store, mail over STARTTLS to the dev mail server, the ui model
// and the serve SSH server on 127.0.0.1:0.
type stack struct {
	addr   string // the SSH server's address
	outbox string
	sender *mail.Sender
	srv    *serve.Server
}

// stackOptions tune the stack for an experiment; the zero value is what
// `otplogin serve` runs with, except for the per-client limits that one
// load client (127.0.0.1) would hit.
type stackOptions struct {
	fps     int // renderer frame rate (serve default)
	maxIdle int // pooled SMTP connections (mail default; negative: none)
	// clientCodes overrides the per-client code limit (default: enough
	// for every session).
	clientCodes int
	// wrap, if set, wraps each session's model.
	wrap func(*ui.Model) tea.Model
}

// startStack starts the stack for sessions sessions and stops it, waiting
// for every part, when the test ends.
func startStack(t testing.TB, sessions int, o stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := devserver.Start(ctx, filepath.Join(t.TempDir(), "outbox"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	mcfg := dev.SenderConfig()
	mcfg.MaxIdle = o.maxIdle
	sender, err := mail.New(mcfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	lim := otp.DefaultLimits()
	lim.ClientIssues = 2 * (sessions + 10) // every session comes from 127.0.0.1
	// A load run sends as fast as the host can; the global rate would cap it.
	lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour = 100_000, 100_000_000
	if o.clientCodes > 0 {
		lim.ClientIssues = o.clientCodes
	}
	svc, err := otp.New(otp.Config{Limits: lim}, otp.NewMemoryStore(), sender)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	quiet := log.New(io.Discard)
	screens := ui.NewCache()
	srv, err := serve.New(serve.Config{
		HostKeyPath:          filepath.Join(t.TempDir(), "hostkey"),
		MaxSessions:          sessions + 10,
		MaxSessionsPerClient: sessions + 10,
		ConnRate:             rate.Inf,
		ConnBurst:            sessions + 10,
		FPS:                  o.fps,
		Logger:               quiet,
		NewModel: func(sess serve.Session) tea.Model {
			m := ui.New(ui.Options{
				Service: svc, Client: sess.Client, Remote: true,
				Context: sess.Context(), Logger: sess.Logger, Cache: screens,
			})
			if o.wrap != nil {
				return o.wrap(m)
			}
			return m
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
		for _, c := range []interface{ Close() error }{svc, sender, dev} {
			if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("close: %v", err)
			}
		}
	})
	return &stack{addr: ln.Addr().String(), outbox: dev.Outbox(), sender: sender, srv: srv}
}

// stats reads the in-process server: this process's RSS, CPU and
// goroutines (the load client's included) and the server's session count.
func (s *stack) stats() StatsReader {
	return Process{Sessions: func() int { return s.srv.Stats().Sessions }}
}
