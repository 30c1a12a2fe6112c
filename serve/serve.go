// Package serve runs the otplogin demo over SSH: one bubbletea program per
// session, behind the limits a server exposed to the internet needs.
//
// Anyone may connect with any user name and no password; the one-time code
// is the login. The SSH source address (see ClientKey) is the client
// identity for both the connection limits here and the otp per-client
// limits; an IPv6 client's /56 and /48 count as clients too, with wider
// caps. Abuse limits, from the outside in:
//
//   - before the handshake: a per-client connection rate and connection caps
//     (refused connections are closed at once, costing no key exchange);
//   - a deadline on the handshake, an idle timeout and an absolute timeout;
//   - one session per connection, a per-client and a global session cap
//     (refused sessions get one polite line and exit status 1);
//   - bounds on what one connection may send: before its shell starts (the
//     SSH layer keeps some of it, such as environment requests, in memory),
//     in all, and as terminal input to its program; a cap on environment
//     variables;
//   - two budgets shared by all connections, which bound the CPU that many
//     clients, each within its own bounds, can take together: the bytes all
//     connections may send per second (reads wait their turn, so a flood
//     slows everyone down rather than growing memory: unread bytes stay in
//     the kernel's socket buffers), and the terminal input all programs may
//     read per second beyond a small allowance per session (the costliest
//     bytes: each typed character is a message through the program). A
//     session whose input finds that budget spent is closed instead of made
//     to wait, since unread input would pile up in the SSH channel's buffer.
//
// Every refusal by these limits is logged at info with the client and the
// limit, a few lines a second per limit (a flood gets one line counting
// the rest), and told to Config.Observer, which a program can count in its
// metrics.
//
// A panic on any goroutine of one connection ends that connection only; it
// is logged once and counted in Stats.Panics and by the Observer (for the
// SSH library's own goroutines, once a program installs Server.LibraryLog).
//
// The session-level part (the login program, the PTY check, the session
// caps, the input bounds, the time limit, the exit statuses) is Gate, a
// wish middleware that other SSH apps put in front of their own handlers:
// a Server is Gate in front of a handler that ends the session with status
// 0, plus the connection-level limits above.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"github.com/pires/go-proxyproto"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"
)

// Config configures a Server. Zero fields take the defaults named below.
type Config struct {
	// Listen is the address ListenAndServe listens on (127.0.0.1:23234).
	Listen string
	// HostKeyPath is the host key file; see LoadHostKey
	// (DefaultHostKeyPath()).
	HostKeyPath string

	// MaxSessions caps live sessions on the server (1000). Connections are
	// capped a little higher so that a refused client can be told why.
	MaxSessions int
	// MaxSessionsPerClient caps live sessions per client (10); live
	// connections per client are capped at twice that.
	MaxSessionsPerClient int
	// ConnRate and ConnBurst limit new connections per client (1/s, 10).
	ConnRate  rate.Limit
	ConnBurst int

	// HandshakeTimeout bounds the SSH handshake (10s); IdleTimeout closes a
	// connection with no traffic either way (5m); MaxTimeout closes any
	// connection (30m; the program is quit a second before, so that the
	// user is told why). Output counts as traffic: a screen that redraws by
	// itself, like the code screen's countdown, keeps its session alive
	// until it stops, and MaxTimeout is what bounds that.
	HandshakeTimeout, IdleTimeout, MaxTimeout time.Duration
	// MaxInputBytes bounds the terminal input one session's program reads
	// (64 KiB, far more than a login needs). A session that sends more is
	// closed: a pasted megabyte would otherwise be buffered and parsed.
	MaxInputBytes int64
	// MaxConnBytes bounds all bytes one connection may send, SSH framing
	// included (4 MiB). It stops floods the program never sees, such as
	// endless window changes.
	MaxConnBytes int64
	// MaxPreShellBytes bounds the bytes a connection may send before it
	// asks for its shell, SSH framing included (64 KiB; a login's handshake
	// and session set-up take a few KiB). Until then the SSH layer keeps
	// what the client sends (environment, data for a program that has not
	// started) and nothing reads it, so connections that never start a
	// shell must not get MaxConnBytes each.
	MaxPreShellBytes int64
	// MaxEnvRequests caps the environment variables a session may set (64):
	// a session that set more is refused its shell, with a line saying why.
	MaxEnvRequests int
	// ReadRate is the bytes per second all connections together may send,
	// SSH framing included (8 MiB/s, far above what logins at full speed
	// need). A connection's reads wait their turn while it is spent.
	ReadRate int64
	// InputRate is the terminal input per second all sessions' programs
	// together may read beyond each session's first InputAllowance bytes
	// (32 KiB/s and 1 KiB: a login types well under 1 KiB). A session that
	// needs more while it is spent is closed, as for MaxInputBytes.
	InputRate, InputAllowance int64
	// TrustedProxies are the load balancers allowed to speak the PROXY
	// protocol (v1 or v2). A connection from one of them must start with a
	// PROXY header, whose source address then names the client for every
	// limit; without it all clients would share the balancer's limits.
	// Other connections are taken as they are, so nobody else can claim an
	// address. Empty: no PROXY protocol.
	TrustedProxies []netip.Prefix
	// ShutdownGrace is how long live sessions may go on after shutdown
	// starts (10s).
	ShutdownGrace time.Duration
	// FPS caps the renderer's frame rate per session (60, Bubble Tea's
	// default). With the patched bubbletea in third_party, the renderer
	// flushes only when the model's view or output changed, so an idle
	// session costs no CPU at any FPS. FPS bounds how often a busy session
	// redraws, and how long a change right after another waits to be drawn,
	// which a low FPS makes a large part of a login (docs/PERFORMANCE.md, F1).
	FPS int

	// Logger gets the operator's log (log.Default()). It never gets a code.
	Logger *log.Logger
	// Observer is told of sessions, refusals and panics, for metrics; nil
	// tells nobody.
	Observer Observer
	// NewModel makes the model for one session. Required.
	NewModel func(Session) tea.Model
	// RunLines, when set, serves a session whose client asked for plain
	// line prompts (ACCESSIBLE=1 in its environment: screen readers and
	// plain terminals) instead of a program: it reads what the visitor
	// types from in (raw, as a PTY sends it) and writes sentences to out,
	// until the login ends or the session's context does; it says the
	// notices from Session.Notices (the shutdown's). Its result is read
	// like a final model (Outcomer, Verifier).
	RunLines func(s Session, in io.Reader, out io.Writer) any
	// Now is the clock for the connection rate limits and for how many
	// refusals a second are logged (time.Now).
	Now func() time.Time
}

// DefaultListen is where ListenAndServe listens when Config.Listen is empty.
const DefaultListen = "127.0.0.1:23234"

// Defaults of the limits most worth tuning, used when their Config field is
// zero.
const (
	DefaultMaxSessions          = 1000
	DefaultMaxSessionsPerClient = 10
	DefaultConnRate             = 1 // new connections per second per client
	DefaultReadRate             = 8 << 20
	DefaultInputRate            = 32 << 10
)

func (c Config) withDefaults() (Config, error) {
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.HostKeyPath, DefaultHostKeyPath())
	setDefault(&c.MaxSessions, DefaultMaxSessions)
	setDefault(&c.MaxSessionsPerClient, DefaultMaxSessionsPerClient)
	setDefault(&c.ConnRate, DefaultConnRate)
	setDefault(&c.ConnBurst, 10)
	setDefault(&c.HandshakeTimeout, 10*time.Second)
	setDefault(&c.IdleTimeout, 5*time.Minute)
	setDefault(&c.MaxTimeout, 30*time.Minute)
	setDefault(&c.MaxInputBytes, 64<<10)
	setDefault(&c.MaxConnBytes, 4<<20)
	setDefault(&c.MaxPreShellBytes, 64<<10)
	setDefault(&c.MaxEnvRequests, 64)
	setDefault(&c.ReadRate, DefaultReadRate)
	setDefault(&c.InputRate, DefaultInputRate)
	setDefault(&c.InputAllowance, 1<<10)
	setDefault(&c.ShutdownGrace, 10*time.Second)
	setDefault(&c.FPS, 60)
	if c.Logger == nil {
		c.Logger = log.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	switch {
	case c.NewModel == nil:
		return c, errors.New("serve: Config.NewModel is required")
	case c.MaxSessions < 0, c.MaxSessionsPerClient < 0, c.ConnBurst < 0, c.ConnRate < 0:
		return c, errors.New("serve: session and connection limits must not be negative")
	case c.HandshakeTimeout < 0, c.IdleTimeout < 0, c.MaxTimeout < 0, c.ShutdownGrace < 0:
		return c, errors.New("serve: timeouts must not be negative")
	case c.MaxInputBytes < 0, c.MaxConnBytes < 0, c.MaxPreShellBytes < 0, c.MaxEnvRequests < 0,
		c.ReadRate < 0, c.InputRate < 0, c.InputAllowance < 0:
		return c, errors.New("serve: input bounds must not be negative")
	case c.FPS < 0 || c.FPS > 120:
		return c, errors.New("serve: FPS must be within 1..120")
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Session is what NewModel gets to build one session's model.
type Session struct {
	ssh.Session
	// Client is ClientKey of the source address: the identity for the otp
	// per-client limits.
	Client string
	// Logger is the server's logger with this session's id and remote
	// address, so that the model's log lines match the session's.
	Logger *log.Logger
	ctx    ssh.Context
	// notices: see Notices. Set for a session that runs RunLines.
	notices <-chan string
}

// Notices brings sentences for the visitor while a login in line mode
// (RunLines) runs: a Server's graceful shutdown sends its notice, the one
// ShutdownMsg.Notice gives a program, once when it starts. RunLines should
// say each on a line of its own and then let the visitor go on, as
// ui.LineIO.Notices does; the session ends anyway when the grace is over.
// The channel is buffered so that the server never waits for RunLines to
// take a notice. It is nil for a program's session; behind Gate, which has
// no shutdown of its own, nothing comes.
func (s Session) Notices() <-chan string { return s.notices }

// Context is the session's context for the login: it ends when the login
// does (or the connection, before), so that requests and timers that use
// it end with the login.
func (s Session) Context() ssh.Context {
	if s.ctx == nil {
		return s.Session.Context()
	}
	return s.ctx
}

// ShutdownMsg is sent to every live session's program when the server starts
// to shut down. A model may show Notice; at Deadline the server quits the
// program anyway and prints a line saying why.
type ShutdownMsg struct {
	Deadline time.Time
}

// Notice is a line for the user. A model can show it by matching
// interface{ Notice() string }, without importing this package.
func (m ShutdownMsg) Notice() string {
	return fmt.Sprintf("The server is shutting down: please finish within %s.",
		max(time.Until(m.Deadline).Round(time.Second), time.Second))
}

// Server is the SSH server. Make one with New and run it with Serve or
// ListenAndServe; it cannot be restarted.
type Server struct {
	// The session handling: Gate's, in front of endSession. The limiter,
	// the logger, the observer, the refusal log, the input budget, the
	// shutdown signals and the session counters are its fields.
	*sessionGate
	cfg     Config
	ssh     *ssh.Server
	hostKey gossh.PublicKey
	reads   *byteBudget // Config.ReadRate

	served atomic.Bool
	addr   atomic.Value // net.Addr, once serving

	refused atomic.Int64
}

// New checks cfg, loads or creates the host key and returns a Server.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	signer, err := LoadHostKey(cfg.HostKeyPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		sessionGate: newSessionGate(GateConfig{
			NewModel:       cfg.NewModel,
			RunLines:       cfg.RunLines,
			MaxInputBytes:  cfg.MaxInputBytes,
			InputRate:      cfg.InputRate,
			InputAllowance: cfg.InputAllowance,
			// The connection is cut at MaxTimeout; quit the program a
			// little earlier so that the user can be told why.
			LoginTimeout: cfg.MaxTimeout - farewellTime,
			FPS:          cfg.FPS,
			Logger:       cfg.Logger,
		}, newLimiter(cfg), "session", cfg.Observer, cfg.Now),
		cfg:     cfg,
		hostKey: signer.PublicKey(),
		reads:   newByteBudget(cfg.ReadRate, time.Now),
	}
	s.stopping = make(chan struct{})
	s.graceOver = make(chan struct{})
	// With no auth handler the server sets NoClientAuth: the "none" method
	// that OpenSSH tries first succeeds, so nobody is asked for a password
	// and no public key is collected.
	s.ssh, err = wish.NewServer(
		func(srv *ssh.Server) error { srv.AddHostKey(signer); return nil },
		wish.WithVersion("otplogin"),
		wish.WithIdleTimeout(cfg.IdleTimeout),
		wish.WithMaxTimeout(cfg.MaxTimeout),
		func(srv *ssh.Server) error {
			srv.HandshakeTimeout = cfg.HandshakeTimeout
			srv.ConnCallback = s.admitConn
			srv.ConnectionFailedCallback = func(nc net.Conn, err error) {
				s.log.Debug("handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
			}
			srv.Handler = func(sess ssh.Session) { s.handle(sess, endSession) }
			srv.SessionRequestCallback = s.sessionRequest
			// Only session channels; no global requests, subsystems or
			// forwarding (the port-forwarding callbacks stay nil, which
			// denies them). The maps are set here, so that the library's
			// process-wide defaults, which any package may add to, open
			// nothing.
			srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": s.sessionChannel}
			srv.RequestHandlers = map[string]ssh.RequestHandler{}
			srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{}
			return nil
		},
	)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return s, nil
}

// HostKey returns the server's public host key, e.g. for its fingerprint.
func (s *Server) HostKey() gossh.PublicKey { return s.hostKey }

// Addr returns the address the server listens on, or nil before Serve.
func (s *Server) Addr() net.Addr {
	a, _ := s.addr.Load().(net.Addr)
	return a
}

// ListenAndServe listens on Config.Listen and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return s.Serve(ctx, l)
}

// Serve accepts SSH connections on l until ctx is cancelled, then shuts down
// gracefully: it stops accepting, sends ShutdownMsg to live sessions (its
// notice to Session.Notices in line mode), lets them run for ShutdownGrace,
// quits the rest with a line saying why, closes every connection and
// returns nil. It returns an error only if l fails.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("serve: Serve called twice")
	}
	defer s.refusals.Close() // no summary timer outlives Serve
	if len(s.cfg.TrustedProxies) > 0 {
		l = &proxyproto.Listener{
			Listener:          l,
			ConnPolicy:        s.proxyPolicy,
			ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		}
	}
	s.addr.Store(l.Addr())
	s.log.Info("listening", "listen", l.Addr().String(),
		"host_key", gossh.FingerprintSHA256(s.hostKey))
	errc := make(chan error, 1)
	go func() { errc <- s.ssh.Serve(l) }()
	select {
	case err := <-errc:
		_ = s.ssh.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	_ = l.Close() // in case ssh.Serve had not registered l yet
	s.shutdown()
	<-errc
	return nil
}

// proxyPolicy requires a PROXY header from trusted balancers and parses
// none from anyone else, so nobody else can claim an address (the SSH layer
// skips such a header as a stray line).
func (s *Server) proxyPolicy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
		ip := ap.Addr().Unmap()
		for _, p := range s.cfg.TrustedProxies {
			if p.Contains(ip) {
				return proxyproto.REQUIRE, nil
			}
		}
	}
	return proxyproto.SKIP, nil
}

// farewellTime is how long quit programs get to print their last line before
// connections are closed under them.
const farewellTime = time.Second

func (s *Server) shutdown() {
	conns, sessions, _ := s.lim.counts()
	s.log.Info("shutting down", "sessions", sessions, "conns", conns, "grace", s.cfg.ShutdownGrace)
	s.deadline = time.Now().Add(s.cfg.ShutdownGrace)
	close(s.stopping)

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	err := s.ssh.Shutdown(ctx) // closes listeners, waits for connections
	cancel()
	if err != nil {
		close(s.graceOver)
		ctx, cancel := context.WithTimeout(context.Background(), farewellTime)
		_ = s.ssh.Shutdown(ctx)
		cancel()
	}
	_ = s.ssh.Close()
	// Session handlers end once their connection is closed; wait for them
	// (bounded) so that nothing of this server outlives Serve.
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(farewellTime):
		s.log.Warn("session handlers still running after shutdown")
	}
	s.log.Info("stopped")
}

// admitConn is the ConnCallback: it applies the pre-handshake limits and
// wraps the connection to count what it sends and release its slot.
func (s *Server) admitConn(ctx ssh.Context, nc net.Conn) (admitted net.Conn) {
	client := ClientKey(nc.RemoteAddr())
	defer func() {
		if r := recover(); r != nil {
			s.logPanic(s.log.With("remote", nc.RemoteAddr().String()), "connection", r, debug.Stack())
			// The SSH library closes a connection it gets no wrapper for.
			// A panic past the limiter's admission would have left its slot
			// taken; the limiter itself unlocks and changes nothing when
			// it panics.
			if admitted != nil {
				_ = admitted.Close()
			}
			admitted = nil
		}
	}()
	if err := s.lim.admitConn(client); err != nil {
		s.refused.Add(1)
		s.logRefusal(s.log, "connection refused", client, refusalOf(err), prefixOf(err)...)
		// RFC 4253 lets a server send lines before its version string;
		// netcat users see it, ssh clients report a closed connection.
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(nc, "busy: too many connections, try again in a minute\r\n")
		return nil
	}
	c := &countedConn{
		Conn:        nc,
		ctx:         ctx,
		client:      client,
		start:       time.Now(),
		maxBytes:    s.cfg.MaxConnBytes,
		maxPreShell: min(s.cfg.MaxPreShellBytes, s.cfg.MaxConnBytes),
		budget:      s.reads,
		release:     func() { s.lim.releaseConn(client) },
		exceeded: func(which string, limit int64) {
			if s.refusals.Allow(which) {
				s.log.Warn("connection closed", "remote", nc.RemoteAddr().String(), "client", client, "limit", which, "max_bytes", limit)
			}
		},
	}
	admitted = c
	ctx.SetValue(connCtxKey{}, c)
	return c
}

type connCtxKey struct{}

// track counts a session handler for shutdown to wait on; false means the
// server is closed and the handler should not run.
func (s *sessionGate) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// sessionChannel allows one session channel per connection, so that the
// session caps cannot be dodged by multiplexing one connection. The SSH
// library's session handler serves the channel's requests on this goroutine
// (and calls sessionRequest there); a panic there ends the connection with
// a line to the user.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	if countedOf(ctx).hasSession.Swap(true) {
		_ = nc.Reject(gossh.ResourceShortage, "one session per connection")
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.logPanic(s.connLogger(ctx), "session requests", r, debug.Stack())
			s.endConn(ctx, conn)
		}
	}()
	ssh.DefaultSessionHandler(srv, conn, nc, ctx)
}

// sessionRequest is the SessionRequestCallback, asked before a session's
// shell, exec or subsystem request is granted. A shell or exec starts
// handleSession, which lifts MaxPreShellBytes; a session that set more than
// MaxEnvRequests variables is refused it (the SSH library keeps every env
// request until then, bounded by MaxPreShellBytes; after it, it refuses
// them). No client sends that many (OpenSSH's SendEnv default is LANG and
// LC_*).
func (s *Server) sessionRequest(sess ssh.Session, reqType string) bool {
	if reqType != "shell" && reqType != "exec" {
		return false // no subsystems
	}
	if n := len(sess.Environ()); n > s.cfg.MaxEnvRequests {
		s.turned.Add(1)
		s.logRefusal(s.connLogger(sess.Context()), "session refused", countedOf(sess.Context()).client, RefusedEnv, "env", n)
		_, _ = fmt.Fprintln(sess.Stderr(), lineEnv)
		return false
	}
	countedOf(sess.Context()).shellStarted.Store(true)
	return true
}

// connLogger is the server's logger with the keys of ctx's connection.
func (s *sessionGate) connLogger(ctx ssh.Context) *log.Logger {
	return s.log.With("session", shortID(ctx.SessionID()), "remote", ctx.RemoteAddr().String())
}

// endConn ends a connection after a panic: the user is told, if the session
// got that far, and the connection is closed, which ends its program too.
func (s *Server) endConn(ctx ssh.Context, conn *gossh.ServerConn) {
	if sess, ok := ctx.Value(ssh.ContextKeySession).(ssh.Session); ok {
		_, _ = fmt.Fprintln(sess.Stderr(), lineError)
	}
	_ = conn.Close()
}

// The byte caps a connection can exceed, as the log's limit= names them.
const (
	limitConnBytes     = "max_conn_bytes"
	limitPreShellBytes = "max_pre_shell_bytes"
)

var (
	errConnBytes     = errors.New("connection sent more than MaxConnBytes")
	errPreShellBytes = errors.New("connection sent more than MaxPreShellBytes before its shell")
)

// countedConn stops reading once the peer has sent its bytes (before and
// after its shell starts), takes what it reads from the server's shared
// read budget, and releases the connection's limiter slot exactly once when
// closed. It also carries what the server knows of the connection: the
// client key, when it was admitted, whether it has opened its one session
// channel and whether that session asked for its shell.
type countedConn struct {
	net.Conn
	ctx                   context.Context // ends when the connection closes
	client                string
	start                 time.Time
	hasSession            atomic.Bool
	shellStarted          atomic.Bool
	read                  atomic.Int64 // bytes read so far
	maxBytes, maxPreShell int64
	budget                *byteBudget
	release               func()
	exceeded              func(which string, limit int64) // which: limitConnBytes or limitPreShellBytes
	closeOnce, once       sync.Once
}

func (c *countedConn) Read(p []byte) (int, error) {
	limit, err, which := c.maxBytes, errConnBytes, limitConnBytes
	if !c.shellStarted.Load() {
		limit, err, which = c.maxPreShell, errPreShellBytes, limitPreShellBytes
	}
	read := c.read.Load()
	if read >= limit {
		c.once.Do(func() { c.exceeded(which, limit) })
		return 0, err
	}
	p = p[:min(int64(len(p)), limit-read, int64(c.budget.chunk))]
	n, rerr := c.Conn.Read(p)
	c.read.Add(int64(n))
	if n > 0 {
		c.budget.take(c.ctx, n)
	}
	return n, rerr
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}
