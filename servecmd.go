package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/internal/logwriter"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
	"github.com/otplogin/otplogin/ui"
)

var serveSettings = []setting{
	{"listen", "OTPLOGIN_LISTEN", "address to listen on; use :23234 to accept connections from other hosts (default " + serve.DefaultListen + ")"},
	{"host-key", "OTPLOGIN_HOST_KEY", "SSH host key file, ed25519, created on first start (default " + serve.DefaultHostKeyPath() + ")"},
	{"log-format", "OTPLOGIN_LOG_FORMAT", "operator log format on stderr: text, logfmt or json (default text on a terminal, logfmt otherwise)"},
	{"debug-addr", "OTPLOGIN_DEBUG_ADDR", "serve /stats and /debug/pprof on this loopback address, e.g. 127.0.0.1:6060 (default off)"},
	{"max-sessions", "OTPLOGIN_MAX_SESSIONS", "live sessions on the server (default 1000)"},
	{"max-sessions-per-client", "OTPLOGIN_MAX_SESSIONS_PER_CLIENT", "live sessions per client address (default 10)"},
	{"conn-rate", "OTPLOGIN_CONN_RATE", "new connections per second per client address, burst 10 (default 1)"},
	{"client-codes", "OTPLOGIN_CLIENT_CODES", "codes per hour per client address (default 20)"},
	{"trusted-proxies", "OTPLOGIN_TRUSTED_PROXIES", "comma-separated addresses or CIDR prefixes of load balancers that send the PROXY protocol header (default none)"},
}

// runServe serves the login over SSH until ctx is cancelled (SIGINT or
// SIGTERM), then shuts down gracefully.
func runServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	s := newSettings("otplogin serve", getenv, serveSettings, mailSettings, serviceSettings)
	s.fs.SetOutput(stderr)
	if err := s.parse(args); err != nil {
		return err
	}
	// Sessions log from their Update; a stuck stderr must not freeze them.
	logOut := logwriter.New(stderr, 4096)
	defer logOut.Close()
	logger, err := newLogger(logOut, s.get("OTPLOGIN_LOG_FORMAT"), isTerminal(stderr))
	if err != nil {
		return s.explain(err)
	}
	cfg, flags, err := serveConfig(s, logger)
	if err != nil {
		return err
	}

	m, err := openMailer(ctx, s)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.dev != nil {
		logger.Warn("DEV MODE: mail is not delivered; codes are saved in the outbox, which SSH users never see", "outbox", m.dev.Outbox())
	}
	svc, err := openService(ctx, s, m, logger, func(c *otp.Config) {
		if flags.clientCodes > 0 {
			c.Limits.ClientIssues = flags.clientCodes
		}
	})
	if err != nil {
		return err
	}
	defer svc.Close()

	screens := ui.NewCache() // every session's titles and help, rendered once
	cfg.NewModel = func(sess serve.Session) tea.Model {
		return ui.New(ui.Options{
			Service: svc,
			Client:  sess.Client,
			Remote:  true,
			Logger:  sess.Logger,
			Context: sess.Context(),
			Cache:   screens,

			RequestTimeout: m.requestTimeout(),
		})
	}
	srv, err := serve.New(cfg)
	if errors.Is(err, serve.ErrHostKey) {
		return s.explain(fmt.Errorf("OTPLOGIN_HOST_KEY: %w", err))
	}
	if err != nil {
		return configError{err}
	}
	listen := cfg.Listen
	if listen == "" {
		listen = serve.DefaultListen
	}
	// Listening here rather than in ListenAndServe lets a bad or busy
	// address name its setting.
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return s.explain(fmt.Errorf("OTPLOGIN_LISTEN: %w", err))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the debug endpoint if the server fails to start
	if flags.debugAddr != "" {
		// Wait for the endpoint (it stops within a second of cancel) so that
		// its last log line comes before the log is closed.
		debugDone := make(chan struct{})
		defer func() { cancel(); <-debugDone }()
		go func() {
			defer close(debugDone)
			if err := srv.ServeDebug(ctx, flags.debugAddr); err != nil {
				logger.Error("debug endpoint stopped", "err", err)
			}
		}()
	}
	return srv.Serve(ctx, l)
}

// serveFlags are the serve settings that configure something other than
// the SSH server.
type serveFlags struct {
	clientCodes int    // otp per-client codes per hour; 0: the default
	debugAddr   string // loopback address of /stats and /debug/pprof; "": off
}

// serveConfig reads the SSH server's settings, each bad one an error that
// names it.
func serveConfig(s *settings, logger *log.Logger) (serve.Config, serveFlags, error) {
	var flags serveFlags
	cfg := serve.Config{
		Listen:      s.get("OTPLOGIN_LISTEN"),
		HostKeyPath: s.get("OTPLOGIN_HOST_KEY"),
		Logger:      logger,
	}
	if err := s.boundedInt("OTPLOGIN_MAX_SESSIONS", maxSessions, &cfg.MaxSessions); err != nil {
		return cfg, flags, err
	}
	if err := s.boundedInt("OTPLOGIN_MAX_SESSIONS_PER_CLIENT", maxSessions, &cfg.MaxSessionsPerClient); err != nil {
		return cfg, flags, err
	}
	if v := s.get("OTPLOGIN_CONN_RATE"); v != "" {
		// ParseFloat also takes NaN, which no comparison rejects and which
		// would refuse every connection, and Inf, which means no limit.
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0 && r <= maxConnRate) {
			return cfg, flags, s.explain(fmt.Errorf("OTPLOGIN_CONN_RATE: %q is not a number of connections per second above 0 and at most %d", v, maxConnRate))
		}
		cfg.ConnRate = rate.Limit(r)
	}
	var err error
	if cfg.TrustedProxies, err = s.prefixes("OTPLOGIN_TRUSTED_PROXIES"); err != nil {
		return cfg, flags, err
	}
	if err := s.boundedInt("OTPLOGIN_CLIENT_CODES", maxClientCodes, &flags.clientCodes); err != nil {
		return cfg, flags, err
	}
	debugAddr := s.get("OTPLOGIN_DEBUG_ADDR")
	if ap, err := netip.ParseAddrPort(debugAddr); debugAddr != "" && (err != nil || !ap.Addr().IsLoopback()) {
		// The endpoint has no authentication and shows the heap.
		return cfg, flags, s.explain(fmt.Errorf("OTPLOGIN_DEBUG_ADDR: %q is not a loopback address and port, e.g. 127.0.0.1:6060", debugAddr))
	}
	flags.debugAddr = debugAddr
	return cfg, flags, nil
}

// Upper bounds of the serve settings: far above what one host serves, low
// enough that the caps derived from them cannot overflow.
const (
	maxSessions    = 1_000_000
	maxConnRate    = 1_000_000
	maxClientCodes = 100_000 // otp.Limits.ClientIssues refuses more
)

// boundedInt reads an optional whole-number setting in 1..hi into dst.
func (s *settings) boundedInt(env string, hi int, dst *int) error {
	v := s.get(env)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > hi {
		return s.explain(fmt.Errorf("%s: %q is not a whole number from 1 to %d", env, v, hi))
	}
	*dst = n
	return nil
}

// prefixes reads a comma-separated list of IP addresses and CIDR prefixes.
func (s *settings) prefixes(env string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s.get(env), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, s.explain(fmt.Errorf("%s: %q is not an IP address or CIDR prefix", env, f))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
