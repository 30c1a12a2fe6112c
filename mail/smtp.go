package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// session is one SMTP connection, greeted, secured and authenticated.
type session struct {
	c         *smtp.Client
	nc        net.Conn    // the TCP connection: deadlines set here cover the TLS layer
	sent      int         // messages accepted on this connection
	idleSince time.Time   // when it went back to the pool
	expiry    *time.Timer // ends it while idle (see pool)
	stays     int         // times it went back to the pool; guarded by pool.mu
}

// stageError tags an error with the stage it happened in.
type stageError struct {
	stage Stage
	err   error
}

func (e *stageError) Error() string { return string(e.stage) + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// stageOf is the stage err failed at: the connection, when err does not
// name one.
func stageOf(err error) *stageError {
	var se *stageError
	if !errors.As(err, &se) {
		se = &stageError{StageConnect, err}
	}
	return se
}

// sendError is e as the error a caller sees, after attempts attempts to
// send to to ("" for none, as for Ping), with ctx's cause if it ended.
func (e *stageError) sendError(ctx context.Context, attempts int, to string) *SendError {
	return &SendError{Stage: e.stage, Attempts: attempts, Code: replyCode(e.err), Err: withCause(ctx, e.err), to: to}
}

func fail(stage Stage, err error) error { return &stageError{stage, err} }

// maxServerBytes bounds what one connection reads from the server, TLS
// records included. Replies are a few hundred bytes a message, but
// textproto buffers a line without limit, so a hostile server (or, before
// STARTTLS, anyone on the path) could otherwise fill memory until the
// deadline with one endless line.
const maxServerBytes = 1 << 20

// errTooMuch ends a connection whose server has sent more than
// maxServerBytes.
var errTooMuch = fmt.Errorf("the server sent more than %d bytes", maxServerBytes)

// limitedConn fails reads once left bytes have been read.
type limitedConn struct {
	net.Conn
	left int
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errTooMuch
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= n
	return n, err
}

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return now.
var aLongTimeAgo = time.Unix(1, 0)

// watch ties the connection to ctx: ctx's deadline becomes the connection's
// and a cancel interrupts whatever I/O is blocked. Calling the returned
// function detaches it; it reports false if the cancel already fired, in
// which case the connection must not be reused.
func watch(ctx context.Context, nc net.Conn) (stop func() bool) {
	dl, _ := ctx.Deadline() // zero: no deadline
	_ = nc.SetDeadline(dl)
	return context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
}

// open returns a session watched by ctx (see watch): if pooled, one from
// the pool that still answers RSET, else a new one. The caller calls stop
// when done.
func (s *Sender) open(ctx context.Context, pooled bool) (sess *session, stop func() bool, err error) {
	for pooled {
		idle := s.pool.get()
		if idle == nil {
			break
		}
		stop := watch(ctx, idle.nc)
		// RSET checks that the server has not dropped the idle connection,
		// before anything of this message is at stake.
		err := idle.c.Reset()
		if err == nil {
			return idle, stop, nil
		}
		stop()
		idle.close()
		if expired(ctx) {
			return nil, nil, fail(StageConnect, err)
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, nil, fail(StageConnect, err)
	}
	nc := &limitedConn{Conn: raw, left: maxServerBytes}
	stop = watch(ctx, nc)
	sess, err = s.handshake(ctx, nc)
	if err != nil {
		stop()
		nc.Close()
		return nil, nil, err
	}
	return sess, stop, nil
}

func (s *Sender) handshake(ctx context.Context, nc net.Conn) (*session, error) {
	conn := nc
	if s.security == ImplicitTLS {
		tc := tls.Client(nc, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			var rh tls.RecordHeaderError
			if errors.As(err, &rh) {
				err = fmt.Errorf("%w (the server speaks cleartext first: use smtp:// or security starttls)", err)
			}
			return nil, fail(StageTLS, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		var ne net.Error
		if s.security == StartTLS && errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("no greeting (a port that expects TLS from the start needs smtps:// or security tls): %w", err)
		}
		return nil, fail(StageConnect, err)
	}
	if err := c.Hello(s.helo); err != nil {
		return nil, fail(StageHello, err)
	}
	if s.security == StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return nil, fail(StageTLS, ErrNoStartTLS)
		}
		if err := c.StartTLS(s.tls); err != nil {
			return nil, fail(StageTLS, err)
		}
	}
	if s.username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return nil, fail(StageAuth, ErrNoAuthMechanism)
		}
		a, err := s.pickAuth(mechs)
		if err != nil {
			return nil, fail(StageAuth, err)
		}
		if err := c.Auth(a); err != nil {
			return nil, fail(StageAuth, err)
		}
	}
	return &session{c: c, nc: nc}, nil
}

// pickAuth prefers PLAIN (one round trip) and falls back to LOGIN, which is
// all some servers (Office 365) offer.
func (s *Sender) pickAuth(mechs string) (smtp.Auth, error) {
	var plain, login bool
	for _, m := range strings.Fields(strings.ToUpper(mechs)) {
		plain = plain || m == "PLAIN"
		login = login || m == "LOGIN"
	}
	switch {
	case plain:
		return smtp.PlainAuth("", s.username, s.password, s.host), nil
	case login:
		return &loginAuth{user: s.username, pass: s.password}, nil
	}
	return nil, fmt.Errorf("%w (server offers %q)", ErrNoAuthMechanism, mechs)
}

// transact runs one mail transaction on an open session.
func (sess *session) transact(m message) error {
	if err := sess.c.Mail(m.from); err != nil {
		return fail(StageMail, err)
	}
	if err := sess.c.Rcpt(m.to); err != nil {
		return fail(StageRcpt, err)
	}
	w, err := sess.c.Data()
	if err != nil {
		return fail(StageData, err)
	}
	if _, err := w.Write(m.raw); err != nil {
		return fail(StageData, err)
	}
	if err := w.Close(); err != nil {
		return fail(StageDataEnd, err)
	}
	return nil
}

// quit says goodbye and closes. The message is already accepted, so a
// failing QUIT changes nothing.
func (sess *session) quit() {
	_ = sess.c.Quit()
	sess.close()
}

func (sess *session) close() { _ = sess.c.Close() }

// loginAuth is AUTH LOGIN (draft-murchison-sasl-login), which net/smtp
// lacks: the server asks "Username:" then "Password:".
type loginAuth struct {
	user, pass string
	step       int
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(server.Name) {
		return "", nil, errors.New("refusing AUTH LOGIN over an unencrypted connection")
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	// Servers word the prompts differently ("Username:", "User Name"), so
	// go by order rather than text.
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected AUTH LOGIN challenge")
}
