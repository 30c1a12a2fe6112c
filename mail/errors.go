package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otplogin/otplogin/internal/mask"
)

// Stage names the step of an SMTP session that failed.
type Stage string

// The stages, in session order.
const (
	StageCompose Stage = "compose"  // building the message; nothing was sent
	StageConnect Stage = "connect"  // TCP connect, implicit TLS handshake, greeting
	StageHello   Stage = "ehlo"     // EHLO
	StageTLS     Stage = "starttls" // STARTTLS and the handshake after it
	StageAuth    Stage = "auth"     // AUTH
	StageMail    Stage = "mail"     // MAIL FROM
	StageRcpt    Stage = "rcpt"     // RCPT TO
	StageData    Stage = "data"     // DATA and writing the message
	StageDataEnd Stage = "data-end" // the reply to the final "."
)

// Sentinel errors; a *SendError wraps them.
var (
	// ErrInvalidAddress: a recipient or sender address is unusable
	// (unparsable, a display name, CR/LF). Nothing was sent.
	ErrInvalidAddress = errors.New("invalid email address")
	// ErrNoStartTLS: the server did not offer STARTTLS, so nothing was sent.
	ErrNoStartTLS = errors.New("server does not offer STARTTLS; refusing to send in cleartext")
	// ErrNoAuthMechanism: credentials are configured but the server offers
	// neither AUTH PLAIN nor AUTH LOGIN.
	ErrNoAuthMechanism = errors.New("server offers neither AUTH PLAIN nor AUTH LOGIN")
)

// SendError is the error of a failed send. Its text is for the operator's
// log: stage, attempts and the server's reply (with the recipient masked);
// it never contains the code or the password. Users should be shown only
// what AddressRejected and MaybeDelivered imply.
type SendError struct {
	Stage    Stage
	Attempts int   // connections tried, 0 when nothing was sent
	Code     int   // the SMTP reply code, 0 when there was no reply
	Err      error // the last attempt's error
	to       string
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("mail: ")
	b.WriteString(string(e.Stage))
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	b.WriteString(": ")
	// Server replies can be multi-line, long and say anything: one clean
	// log line of bounded length.
	b.WriteString(cut(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, mask.In(e.Err.Error(), e.to)), maxErrText))
	if e.MaybeDelivered() {
		b.WriteString(" (the message may still have been delivered)")
	}
	return b.String()
}

func (e *SendError) Unwrap() error { return e.Err }

// maxErrText bounds the cause in a SendError's text; real replies, even
// Gmail's four-line ones, are a few hundred bytes.
const maxErrText = 1024

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// MaybeDelivered reports that the whole message was sent but the server's
// verdict never arrived: it may have been queued. Such sends are not retried.
func (e *SendError) MaybeDelivered() bool {
	return e.Stage == StageDataEnd && e.Code == 0
}

// AddressRejected reports that the recipient address is unusable for good:
// invalid, or refused with a 5xx reply to RCPT. The user should try another
// address; any other failure means "mail is not working right now".
func (e *SendError) AddressRejected() bool {
	if e.Stage == StageCompose {
		return errors.Is(e.Err, errInvalidRecipient)
	}
	if e.Stage != StageRcpt || e.Code < 500 || e.Code > 599 {
		return false
	}
	// RFC 3463: 5.1.x is about the address, 5.2.x the mailbox; 5.7.x is
	// policy ("554 5.7.1 Relay access denied": our configuration, not the
	// user's address). Without a telling enhanced code, go by the reply.
	var tp *textproto.Error
	if errors.As(e.Err, &tp) {
		if m := enhancedCode.FindStringSubmatch(tp.Msg); m != nil && m[1] != "0" {
			return m[1] == "1" || m[1] == "2"
		}
	}
	switch e.Code {
	case 550, 551, 552, 553:
		return true
	}
	return false
}

// enhancedCode matches the RFC 3463 status code that starts a reply text
// and captures its subject.
var enhancedCode = regexp.MustCompile(`^5\.(\d{1,3})\.\d{1,3}\b`)

// errInvalidRecipient marks an invalid To address (vs an invalid From,
// which is the operator's problem).
var errInvalidRecipient = fmt.Errorf("recipient: %w", ErrInvalidAddress)

// replyCode returns the SMTP reply code in err, or 0.
func replyCode(err error) int {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	return 0
}

// retryable says whether a failed attempt may be repeated on a fresh
// connection. A reply is unambiguous: 4xx is temporary, 5xx is final. Without
// a reply, a network failure before the final "." is safe to repeat; after it
// the server may have queued the message, and a second copy is worse than
// telling the user to ask again if nothing arrives.
func retryable(stage Stage, err error) bool {
	if code := replyCode(err); code != 0 {
		return code >= 400 && code < 500 && stage != StageAuth
	}
	if stage == StageDataEnd || stage == StageAuth || isTLSFailure(err) {
		return false
	}
	return isNetwork(err)
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}

// isTLSFailure: a certificate or protocol failure, as opposed to the
// network dropping during a handshake. These are configuration errors.
func isTLSFailure(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		ae  tls.AlertError
		rh  tls.RecordHeaderError
		ech *tls.ECHRejectionError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &ae) || errors.As(err, &rh) || errors.As(err, &ech) || errors.Is(err, ErrNoStartTLS)
}

// withCause attaches the context's verdict to an error caused by the
// deadline or a cancel (which surface as i/o timeouts), so errors.Is finds
// context.Canceled or context.DeadlineExceeded.
func withCause(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil && expired(ctx) {
		// The connection's deadline is the context's, and it can fire a
		// moment before the context's own timer does.
		cause = context.DeadlineExceeded
	}
	if cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// expired reports whether ctx is done or its deadline has passed.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
