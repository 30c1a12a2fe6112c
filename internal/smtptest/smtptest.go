// Package smtptest is a real SMTP server for tests: go-smtp on 127.0.0.1:0
// with STARTTLS or implicit TLS on a self-signed certificate, AUTH PLAIN and
// LOGIN, a record of every session and message, a connection count, and
// hooks that inject replies, drops and stalls.
package smtptest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/smtpd"
)

// TLSMode is how the server offers TLS.
type TLSMode int

// The modes.
const (
	StartTLS    TLSMode = iota // STARTTLS offered; AUTH only after it
	ImplicitTLS                // TLS from the first byte (smtps)
	NoStartTLS                 // cleartext only, AUTH offered anyway (a stripping attacker)
)

// Hooks inject faults. conn is the 1-based connection number; a non-nil
// error becomes the reply (return an *smtp.SMTPError to choose the code).
type Hooks struct {
	Mail func(conn int, c *smtp.Conn) error
	Rcpt func(conn int, to string) error
	// Data runs after the whole message was read, before the reply. ctx is
	// done when the server closes, so a stall can block on it; c allows
	// dropping the connection.
	Data func(ctx context.Context, conn int, c *smtp.Conn) error
}

// Options configure a Server. The zero value is STARTTLS with AUTH PLAIN and
// LOGIN for user "user", password "secret".
type Options struct {
	TLS        TLSMode
	Mechanisms []string // offered AUTH mechanisms; default PLAIN and LOGIN
	Username   string
	Password   string
	Hooks      Hooks
}

// Session records one SMTP session; go-smtp starts a new one after
// STARTTLS, so a STARTTLS connection has two.
type Session struct {
	Conn     int
	TLS      bool
	Helo     string
	AuthUser string // set when AUTH succeeded
	AuthMech string
	From     string
	To       []string
}

// Message is an accepted message.
type Message struct {
	Conn int
	From string
	To   []string
	Data []byte
}

// Server is a running test server.
type Server struct {
	RootCAs *x509.CertPool // trusts the server's certificate
	CertPEM []byte         // the certificate, for a CA file

	run  *smtpd.Running
	opts Options
	ctx  context.Context // done when the server closes

	mu       sync.Mutex
	sessions []*Session
	messages []Message
	mails    int
}

// Start starts a server and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	if opts.Username == "" {
		opts.Username, opts.Password = "user", "secret"
	}
	cert, roots, err := smtpd.Cert()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		RootCAs: roots,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		opts:    opts,
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsConfig := smtpd.ServerTLS(cert)
	switch opts.TLS {
	case StartTLS:
		srv.TLSConfig = tlsConfig
	case NoStartTLS:
		srv.AllowInsecureAuth = true
	}
	implicit := tlsConfig
	if opts.TLS != ImplicitTLS {
		implicit = nil
	}
	s.run, err = smtpd.Serve(srv, implicit)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx = ctx
	go func() { <-s.run.Done(); cancel() }()
	t.Cleanup(func() {
		if err := s.run.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Host is the server's IP address.
func (s *Server) Host() string { return s.run.Addr().IP.String() }

// Port is the server's port.
func (s *Server) Port() int { return s.run.Addr().Port }

// Addr is host:port.
func (s *Server) Addr() string { return s.run.Addr().String() }

// Connections is the number of TCP connections accepted.
func (s *Server) Connections() int { return s.run.Connections() }

// DropConns closes every client connection, as a server that drops idle
// clients does; the server keeps listening.
func (s *Server) DropConns() { s.run.DropConns() }

// MailCommands is the number of MAIL commands received, accepted or not.
func (s *Server) MailCommands() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails
}

// Sessions returns copies of the recorded sessions.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, ss := range s.sessions {
		out[i] = *ss
		out[i].To = slices.Clone(ss.To)
	}
	return out
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	rec := &Session{Conn: smtpd.ConnID(c.Conn()), TLS: isTLS, Helo: c.Hostname()}
	s.mu.Lock()
	s.sessions = append(s.sessions, rec)
	s.mu.Unlock()
	return &session{s: s, c: c, rec: rec}, nil
}

type session struct {
	s   *Server
	c   *smtp.Conn
	rec *Session
}

func (ss *session) AuthMechanisms() []string { return ss.s.opts.Mechanisms }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ss.s.opts.Mechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	check := func(user, pass string) error {
		if user != ss.s.opts.Username || pass != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.s.mu.Lock()
		ss.rec.AuthUser, ss.rec.AuthMech = user, mech
		ss.s.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	ss.s.mails++
	authed := ss.rec.AuthUser != ""
	ss.s.mu.Unlock()
	if !authed {
		return smtp.ErrAuthRequired
	}
	if h := ss.s.opts.Hooks.Mail; h != nil {
		if err := h(ss.rec.Conn, ss.c); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.rec.From = from
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if h := ss.s.opts.Hooks.Rcpt; h != nil {
		if err := h(ss.rec.Conn, to); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.rec.To = append(ss.rec.To, to)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	if h := ss.s.opts.Hooks.Data; h != nil {
		if err := h(ss.s.ctx, ss.rec.Conn, ss.c); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.messages = append(ss.s.messages, Message{
		Conn: ss.rec.Conn, From: ss.rec.From, To: slices.Clone(ss.rec.To), Data: buf.Bytes(),
	})
	return nil
}

func (ss *session) Reset() {
	ss.s.mu.Lock()
	ss.rec.From, ss.rec.To = "", nil
	ss.s.mu.Unlock()
}

func (ss *session) Logout() error { return nil }

// Drop closes the client's connection from inside a hook.
func Drop(c *smtp.Conn) error {
	_ = c.Conn().Close()
	return errors.New("dropped")
}

// Reply is a shorthand for an SMTP reply error.
func Reply(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(response) > 0 { // initial response carries the user name
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	case 3:
		return nil, true, l.check(l.user, string(response))
	}
	return nil, true, errors.New("unexpected response")
}
