// Package devserver is the mail server used when no SMTP server is
// configured: go-smtp on 127.0.0.1 with an ephemeral self-signed certificate
// and random credentials, reached through the same Sender path as a real
// server (STARTTLS, AUTH PLAIN, certificate verified against its own pool).
// Every message is written to an outbox folder that only the local operator
// can read, and the last ones are kept in memory.
//
// Outbox files are named
//
//	20261128T140203.123456789Z-1a2b3c4d-alice@example.com.eml
//
// (UTC time with nanoseconds, 8 random hex digits, the recipient lower-cased
// with any byte outside [a-z0-9@._+-] replaced by "_"), so names sort by time
// and the newest message for an address is
//
//	ls "$OUTBOX"/*Z-????????-alice@example.com.eml | tail -n 1
//
// and NewestCode reads the code in it.
//
// Files appear whole (written under a dot name, then renamed).
//
// The outbox is capped (WithOutboxLimit; 10,000 messages or 100 MiB by
// default): a message that would go over the cap first deletes the oldest
// messages in the outbox, those with names of the form above and no other
// files. A dev server that refused mail when full would stop every login
// until someone emptied the folder, and anyone allowed to request codes
// could fill it; the oldest codes have long expired, so deleting them loses
// nothing a login needs.
package devserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/smtpd"
	"github.com/otplogin/otplogin/mail"
)

// MaxMessages is how many messages the server keeps in memory.
const MaxMessages = 100

// maxMessageBytes bounds one message; ours are a few KiB.
const maxMessageBytes = 1 << 20

// The outbox cap's defaults and bounds (see WithOutboxLimit).
const (
	DefaultOutboxFiles = 10_000
	DefaultOutboxBytes = 100 << 20
	MaxOutboxFiles     = 10_000_000
	MinOutboxBytes     = maxMessageBytes // one message always fits
	MaxOutboxBytes     = 1 << 40
)

// Option configures Start.
type Option func(*options)

type options struct {
	files int
	bytes int64
}

// WithOutboxLimit caps the outbox at files messages and bytes bytes (the
// sizes of the messages), within 1..MaxOutboxFiles and
// MinOutboxBytes..MaxOutboxBytes; zero keeps a default.
func WithOutboxLimit(files int, bytes int64) Option {
	return func(o *options) {
		if files != 0 {
			o.files = files
		}
		if bytes != 0 {
			o.bytes = bytes
		}
	}
}

// Message is one received message.
type Message struct {
	Time time.Time
	From string   // envelope sender
	To   []string // envelope recipients
	Path string   // the .eml file in the outbox
	Raw  []byte   // the message as received
}

// Server is a running dev mail server.
type Server struct {
	run      *smtpd.Running
	outbox   string
	user     string
	password string
	roots    *x509.CertPool

	mu      sync.Mutex
	msgs    []Message     // oldest first, at most MaxMessages
	changed chan struct{} // closed and replaced when a message arrives

	// fileMu serialises writes to the outbox so that the cap holds: a
	// message's room is made and filled under it.
	fileMu     sync.Mutex
	limit      options
	files      []outboxFile // the outbox's messages, oldest first
	filesBytes int64        // their sizes added up

	stop func() bool
}

// DefaultOutbox is os.UserCacheDir()/otplogin/outbox, or the same under
// os.TempDir() when there is no cache directory.
func DefaultOutbox() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "otplogin", "outbox")
}

// Start creates outbox (mode 0700; "" means DefaultOutbox) and starts the
// server on a free loopback port. It stops when ctx is done or Close is
// called; Close waits for it either way. If the outbox already holds more
// messages than its cap, the oldest are deleted before Start returns.
func Start(ctx context.Context, outbox string, opts ...Option) (*Server, error) {
	o := options{files: DefaultOutboxFiles, bytes: DefaultOutboxBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.files < 1 || o.files > MaxOutboxFiles || o.bytes < MinOutboxBytes || o.bytes > MaxOutboxBytes {
		return nil, fmt.Errorf("devserver: outbox limit %d messages, %d bytes: want 1..%d messages and %d..%d bytes",
			o.files, o.bytes, MaxOutboxFiles, MinOutboxBytes, int64(MaxOutboxBytes))
	}
	if outbox == "" {
		outbox = DefaultOutbox()
	}
	if err := os.MkdirAll(outbox, 0o700); err != nil {
		return nil, fmt.Errorf("devserver: outbox: %w", err)
	}
	// The codes in there are secrets: tighten a folder that already
	// existed, but never a shared one such as /tmp, which tightening would
	// break for everyone else.
	fi, err := os.Stat(outbox)
	if err != nil {
		return nil, fmt.Errorf("devserver: outbox: %w", err)
	}
	if fi.Mode()&(os.ModeSticky|0o002) != 0 {
		return nil, fmt.Errorf("devserver: outbox: %w", &fs.PathError{Op: "use", Path: outbox, Err: errors.New("a shared folder; name a private one")})
	}
	if err := os.Chmod(outbox, 0o700); err != nil {
		return nil, fmt.Errorf("devserver: outbox: %w", err)
	}
	cert, roots, err := smtpd.Cert()
	if err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	s := &Server{
		outbox:   outbox,
		user:     "dev-" + randomHex(4),
		password: randomHex(16),
		roots:    roots,
		changed:  make(chan struct{}),
		limit:    o,
	}
	if err := s.scanOutbox(); err != nil {
		return nil, fmt.Errorf("devserver: outbox: %w", err)
	}
	s.trim(0, 0)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = smtpd.ServerTLS(cert)
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 10
	srv.ErrorLog = log.New(io.Discard, "", 0) // client errors are the client's to report
	if s.run, err = smtpd.Serve(srv, nil); err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	s.stop = context.AfterFunc(ctx, func() { _ = s.run.Close() })
	return s, nil
}

// SenderConfig is the mail.Config that reaches this server: STARTTLS, AUTH
// PLAIN with the random credentials, and the certificate's pool as the only
// roots. From is a placeholder on a reserved domain.
func (s *Server) SenderConfig() mail.Config { return s.Apply(mail.Config{}) }

// Apply returns c pointed at this server: the server part (host, port,
// credentials, security, roots) is replaced and the message settings (From,
// Subject, AppName, TemplateDir, HeloName, Timeout, Retry, reuse) are kept; an empty From gets the
// placeholder.
func (s *Server) Apply(c mail.Config) mail.Config {
	a := s.run.Addr()
	c.Host, c.Port = a.IP.String(), a.Port
	c.Username, c.Password = s.user, s.password
	c.Security = mail.StartTLS
	c.RootCAs, c.CAFile = s.roots, ""
	if c.From == "" {
		c.From = "otplogin <otplogin@dev.invalid>"
	}
	return c
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.run.Addr().String() }

// Outbox is the folder the messages are written to.
func (s *Server) Outbox() string { return s.outbox }

// Messages returns the messages kept in memory, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Latest returns the newest message in memory for the address to
// (compared case-insensitively).
func (s *Server) Latest(to string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest(to)
}

func (s *Server) latest(to string) (Message, bool) {
	for i := len(s.msgs) - 1; i >= 0; i-- {
		for _, r := range s.msgs[i].To {
			if strings.EqualFold(r, to) {
				return s.msgs[i], true
			}
		}
	}
	return Message{}, false
}

// WaitFor returns the newest message for to received after the time after,
// waiting for one until ctx is done, so that a test in the same process
// reads a code without polling.
func (s *Server) WaitFor(ctx context.Context, to string, after time.Time) (Message, error) {
	for {
		s.mu.Lock()
		m, ok := s.latest(to)
		changed := s.changed
		s.mu.Unlock()
		if ok && m.Time.After(after) {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return Message{}, fmt.Errorf("devserver: no message for %s: %w", to, ctx.Err())
		case <-changed:
		}
	}
}

// Close stops the server and waits until every connection is done.
func (s *Server) Close() error {
	s.stop()
	return s.run.Close()
}

// outboxFile is one message file in the outbox.
type outboxFile struct {
	name string
	size int64
}

// messageName matches the names store gives messages; the cap deletes no
// other file.
var messageName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z-[0-9a-f]{8}-[a-z0-9@._+-]+\.eml$`)

// scanOutbox lists the messages already in the outbox, oldest first.
func (s *Server) scanOutbox() error {
	entries, err := os.ReadDir(s.outbox)
	if err != nil {
		return err
	}
	for _, e := range entries { // sorted by name, so by time
		if !e.Type().IsRegular() || !messageName.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		s.files = append(s.files, outboxFile{e.Name(), fi.Size()})
		s.filesBytes += fi.Size()
	}
	return nil
}

// trim deletes the oldest messages until files more messages of size bytes
// fit under the cap. The caller holds fileMu (or is Start).
func (s *Server) trim(files int, size int64) {
	n := 0
	for n < len(s.files) && (len(s.files)-n+files > s.limit.files || s.filesBytes+size > s.limit.bytes) {
		// A file already deleted by hand is simply gone; any other
		// failure leaves one file too many, which the operator's own
		// clean-up then deals with.
		_ = os.Remove(filepath.Join(s.outbox, s.files[n].name))
		s.filesBytes -= s.files[n].size
		n++
	}
	s.files = slices.Delete(s.files, 0, n)
}

// store writes m to the outbox, within its cap, and remembers it.
func (s *Server) store(m Message) error {
	rcpt := ""
	if len(m.To) > 0 {
		rcpt = m.To[0]
	}
	name := fmt.Sprintf("%s-%s-%s.eml", m.Time.UTC().Format("20060102T150405.000000000Z"), randomHex(4), sanitize(rcpt))
	m.Path = filepath.Join(s.outbox, name)
	s.fileMu.Lock()
	s.trim(1, int64(len(m.Raw)))
	err := writeFile(s.outbox, m.Path, m.Raw)
	if err == nil {
		s.files = append(s.files, outboxFile{name, int64(len(m.Raw))})
		s.filesBytes += int64(len(m.Raw))
	}
	s.fileMu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == MaxMessages {
		s.msgs = append(s.msgs[:0], s.msgs[1:]...)
	}
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// writeFile writes data to path through a temporary file in dir, so that
// the file appears whole.
func writeFile(dir, path string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".incoming-*") // mode 0600
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// sanitize keeps a recipient readable in a file name and harmless in a
// shell glob or path.
func sanitize(addr string) string {
	if addr == "" {
		return "unknown"
	}
	b := []byte(strings.ToLower(addr))
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("@._+-", c) >= 0
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// session is one SMTP session; MAIL is refused until AUTH succeeded.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		okUser := subtle.ConstantTimeCompare([]byte(user), []byte(ss.s.user))
		okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(ss.s.password))
		if okUser&okPass != 1 || identity != "" && identity != user {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	m := Message{Time: time.Now(), From: ss.from, To: append([]string(nil), ss.to...), Raw: buf.Bytes()}
	if err := ss.s.store(m); err != nil {
		// The client is this process: the reason reaches the operator's log.
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot write to the outbox: " + err.Error()}
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

var _ smtp.AuthSession = (*session)(nil)
