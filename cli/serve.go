package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/internal/httpserve"
	"github.com/otplogin/otplogin/internal/logwriter"
	"github.com/otplogin/otplogin/internal/metrics"
	"github.com/otplogin/otplogin/serve"
	"github.com/otplogin/otplogin/ui"
)

// runServe serves the login over SSH until ctx is cancelled (SIGINT or
// SIGTERM), then shuts down gracefully. Everything a setting can get wrong
// (the outbox, the templates, Redis, the host key, the listen addresses) is
// opened before the first log line, so that a bad one is the only line on
// stderr.
func runServe(ctx context.Context, c *Config, stdio IO) error {
	// Sessions log from their Update; a stuck stderr must not freeze them.
	logOut := logwriter.New(stdio.Stderr, 4096)
	defer logOut.Close()
	logger := newLogger(logOut, c.LogFormat, c.LogLevel, isTerminal(stdio.Stderr))
	mx := metrics.New(metrics.Options{Logger: logger})
	defer mx.Close() // before the log closes: it may log what it held back

	m, err := openMailer(ctx, c)
	if err != nil {
		return err
	}
	defer m.Close()
	svc, err := openService(ctx, c, m, logger, mx)
	if err != nil {
		return err
	}
	defer svc.Close()

	cfg := c.Serve
	cfg.Logger = logger
	cfg.Observer = mx
	counted := mx.Service(svc)
	screens := ui.NewCache() // every session's titles and help, rendered once
	options := func(sess serve.Session) ui.Options {
		return ui.Options{
			Service: counted,
			Client:  sess.Client,
			Remote:  true,
			Logger:  sess.Logger,
			Context: sess.Context(),
			Cache:   screens,
			AppName: c.Mail.AppName,

			RequestTimeout: m.requestTimeout(),
		}
	}
	cfg.NewModel = func(sess serve.Session) tea.Model { return ui.New(options(sess)) }
	// A visitor who sets ACCESSIBLE=1 gets line prompts; the PTY is raw,
	// so they are echoed. The server's shutdown notice is said between
	// them.
	cfg.RunLines = func(sess serve.Session, in io.Reader, out io.Writer) any {
		return ui.RunAccessible(sess.Context(), options(sess), ui.LineIO{In: in, Out: out, Echo: true, Notices: sess.Notices()})
	}
	srv, err := serve.New(cfg)
	if errors.Is(err, serve.ErrHostKey) {
		return hostKey.fail(err)
	}
	if err != nil {
		return configError{err}
	}
	// charm.land/ssh logs the panics it recovers through slog's default
	// logger: into the operator log, counted in /stats.
	slog.SetDefault(slog.New(srv.LibraryLog()))
	// Listening here rather than in ListenAndServe lets a bad or busy
	// address name its setting.
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return listen.fail(err)
	}
	var ml net.Listener
	if c.MetricsAddr != "" {
		if ml, err = lc.Listen(ctx, "tcp", c.MetricsAddr); err != nil {
			l.Close()
			return metricsAddr.fail(err)
		}
	}

	if m.dev != nil {
		logger.Warn("DEV MODE: mail is not delivered; codes are saved in the outbox, which SSH users never see", "outbox", m.dev.Outbox())
	}
	if c.RedisURL != "" {
		logger.Info("codes and limits are shared through Redis")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the endpoints if the server fails to start
	// Each goroutine below ends within a second of cancel; waiting for
	// them lets their last log lines come before the log is closed.
	var helpers sync.WaitGroup
	defer func() { cancel(); helpers.Wait() }()
	if ml != nil {
		checks := []metrics.Check{mx.MailCheck(m.sender.Ping)}
		if sc, ok := metrics.StoreCheck(svc.rawStore); ok {
			checks = append(checks, sc)
		}
		logger.Info("operator endpoint", "listen", ml.Addr().String(), "paths", "/metrics /healthz /readyz")
		helpers.Go(func() {
			if err := httpserve.Serve(ctx, ml, mx.Handler(checks...)); err != nil {
				logger.Error("operator endpoint stopped", "err", err)
			}
		})
	}
	helpers.Go(func() {
		tick := time.NewTicker(metrics.SummaryEvery)
		defer tick.Stop()
		mx.Summarize(ctx, tick.C)
	})
	if c.DebugAddr != "" {
		helpers.Go(func() {
			if err := srv.ServeDebug(ctx, c.DebugAddr); err != nil {
				logger.Error("debug endpoint stopped", "err", err)
			}
		})
	}
	return srv.Serve(ctx, l)
}
