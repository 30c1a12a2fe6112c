package load

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/crypto/ssh"
)

// Terminal the sessions ask for: what most people's ssh sends.
const (
	termName   = "xterm-256color"
	termWidth  = 80
	termHeight = 24
)

// maxScreen caps the output kept while waiting for a screen; a UI that
// never draws the marker fails the wait instead of growing the buffer.
const maxScreen = 256 << 10

// maxScreenText is how much of the screen's end a failure quotes, in runes:
// enough for a banner above the help line.
const maxScreenText = 160

// quitWait bounds the wait for the server to end a session after ctrl+c.
const quitWait = 2 * time.Second

// SessionError says in which phase a session failed and why.
type SessionError struct {
	Phase  string // e.g. "dial", "code screen"
	Err    error
	Screen string // the end of the screen's text when it failed, address hidden
}

func (e *SessionError) Error() string {
	s := e.Phase + ": " + e.Err.Error()
	if e.Screen != "" {
		s += fmt.Sprintf(" (screen: %q)", e.Screen)
	}
	return s
}

func (e *SessionError) Unwrap() error { return e.Err }

func phaseErr(phase string, err error) error {
	return &SessionError{Phase: phase, Err: err}
}

// Reason is a short, countable description of a session's failure: the
// phase and the kind of error, without the details that differ per session.
func Reason(err error) string {
	var se *SessionError
	phase := "session"
	if errors.As(err, &se) {
		phase = se.Phase
		err = se.Err
	}
	var cause string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		cause = "timeout"
	case errors.Is(err, context.Canceled):
		cause = "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		cause = "connection closed"
	case errors.Is(err, errScreenTooLong):
		cause = errScreenTooLong.Error()
	default:
		cause = err.Error()
		if i := strings.IndexByte(cause, ':'); i > 0 && len(cause) > 60 {
			cause = cause[:i]
		}
	}
	return phase + ": " + cause
}

var errScreenTooLong = errors.New("screen never showed the expected text")

// sshSession is one SSH connection with a PTY shell.
type sshSession struct {
	conn    net.Conn
	client  *ssh.Client
	sess    *ssh.Session
	stdin   io.Writer
	stdout  io.Reader
	unbind  func() bool   // stops closing conn when the dial's ctx ends
	buf     []byte        // output since the last screen matched
	chunk   []byte        // read buffer
	drained chan struct{} // closed when drain's goroutine ends; nil if none
}

// dial connects to target, asks for a PTY and starts the shell, all before
// setup ends. The connection is closed when life ends, which ends every
// wait on it.
func dial(life, setup context.Context, target, user string) (*sshSession, error) {
	var d net.Dialer
	conn, err := d.DialContext(setup, "tcp", target)
	if err != nil {
		return nil, phaseErr("dial", err)
	}
	s := &sshSession{conn: conn, unbind: context.AfterFunc(life, func() { conn.Close() })}
	stopSetup := context.AfterFunc(setup, func() { conn.Close() })
	err = s.start(target, user)
	if !stopSetup() && err == nil {
		err = phaseErr("shell", setup.Err()) // it raced the deadline and lost its conn
	}
	if err != nil {
		s.close()
		var se *SessionError
		if cause := cmp.Or(setup.Err(), life.Err()); cause != nil && errors.As(err, &se) {
			se.Err = cause // the handshake failed because a context closed conn
		}
		return nil, err
	}
	return s, nil
}

func (s *sshSession) start(target, user string) error {
	cfg := &ssh.ClientConfig{
		User: user,
		// Targets are loopback only and the demo server's host key is
		// often made fresh per run: there is no remote host to trust.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}
	c, chans, reqs, err := ssh.NewClientConn(s.conn, target, cfg)
	if err != nil {
		return phaseErr("handshake", err)
	}
	s.client = ssh.NewClient(c, chans, reqs)
	if s.sess, err = s.client.NewSession(); err != nil {
		return phaseErr("session", err)
	}
	if err := s.sess.RequestPty(termName, termHeight, termWidth, ssh.TerminalModes{}); err != nil {
		return phaseErr("pty", err)
	}
	if s.stdin, err = s.sess.StdinPipe(); err != nil {
		return phaseErr("pty", err)
	}
	if s.stdout, err = s.sess.StdoutPipe(); err != nil {
		return phaseErr("pty", err)
	}
	if err := s.sess.Shell(); err != nil {
		return phaseErr("shell", err)
	}
	s.chunk = make([]byte, 4096)
	return nil
}

// waitFor reads output until it contains marker. ctx only labels the
// error: the caller bounds the wait by closing the connection.
func (s *sshSession) waitFor(ctx context.Context, phase, marker, address string) error {
	m := []byte(marker)
	for {
		if bytes.Contains(s.buf, m) {
			s.buf = s.buf[:0]
			return nil
		}
		if len(s.buf) > maxScreen {
			return s.screenErr(phase, errScreenTooLong, address)
		}
		n, err := s.stdout.Read(s.chunk)
		s.buf = append(s.buf, s.chunk[:n]...)
		if err != nil {
			if bytes.Contains(s.buf, m) {
				s.buf = s.buf[:0]
				return nil
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return s.screenErr(phase, err, address)
		}
	}
}

// screenErr attaches the end of the screen's text to a failure, so that a
// report can say what the server showed instead (a limit, an error banner).
func (s *sshSession) screenErr(phase string, err error, address string) error {
	text := strings.Join(strings.Fields(ansi.Strip(string(s.buf))), " ")
	text = strings.ReplaceAll(text, address, "<address>")
	if r := []rune(text); len(r) > maxScreenText {
		text = "…" + string(r[len(r)-maxScreenText:])
	}
	return &SessionError{Phase: phase, Err: err, Screen: text}
}

// typeText sends keystrokes as one write, as a paste or a fast typist would.
func (s *sshSession) typeText(phase, text string) error {
	if _, err := io.WriteString(s.stdin, text); err != nil {
		return phaseErr(phase, err)
	}
	return nil
}

// quit presses ctrl+c and gives the server a moment to end the session, so
// that a run measures a clean exit rather than only dropped connections.
func (s *sshSession) quit() {
	if _, err := io.WriteString(s.stdin, "\x03"); err != nil {
		return
	}
	ended := make(chan struct{})
	go func() {
		_ = s.sess.Wait()
		close(ended)
	}()
	t := time.NewTimer(quitWait)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
		s.abort()
		<-ended
	}
}

// drain counts what the server sends from now on, in the background, until
// the session is closed.
func (s *sshSession) drain(counter *atomic.Int64) {
	s.drained = make(chan struct{})
	go func() {
		defer close(s.drained)
		for {
			n, err := s.stdout.Read(s.chunk)
			counter.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
}

// abort closes the connection under every pending read and write.
func (s *sshSession) abort() { s.conn.Close() }

// close ends the session and waits for its background reader.
func (s *sshSession) close() {
	s.unbind()
	if s.client != nil {
		s.client.Close()
	}
	s.conn.Close()
	if s.drained != nil {
		<-s.drained
	}
}
