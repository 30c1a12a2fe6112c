package mail

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/jordan-wright/email"
)

// message is a composed message and its envelope.
type message struct {
	from, to string // bare addresses for MAIL FROM and RCPT TO
	raw      []byte
}

// parseAddress parses one address and refuses control characters, which
// net/mail lets through in some positions and jordan-wright/email would
// write verbatim into a header.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, errors.New("contains control characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address", s)
	}
	return a, nil
}

// parseRecipient accepts a bare addr-spec only: the recipient comes from a
// user, and a display name would be theirs to inject into our header.
func parseRecipient(to string) (string, error) {
	a, err := parseAddress(to)
	if err != nil || a.Name != "" || a.Address != to {
		return "", errInvalidRecipient
	}
	return a.Address, nil
}

// composeCode builds the code message with tpl.
func composeCode(tpl *templates, from *mail.Address, appName, subject, to, code string, expiresAt, now time.Time) (message, error) {
	data := templateData{
		AppName:  appName,
		Subject:  subject,
		Code:     code,
		Expires:  expiresAt.UTC().Format("15:04 MST"),
		ValidFor: validFor(expiresAt.Sub(now)),
	}
	var text, html bytes.Buffer
	if err := tpl.text.Execute(&text, data); err != nil {
		return message{}, fmt.Errorf("text template: %w", err)
	}
	if err := tpl.html.Execute(&html, data); err != nil {
		return message{}, fmt.Errorf("html template: %w", err)
	}
	return compose(from, to, subject, text.Bytes(), html.Bytes(), now)
}

// composeTest builds the mail-test message.
func composeTest(from *mail.Address, appName, to, server string, now time.Time) (message, error) {
	text := fmt.Sprintf("This is a test message from %s (otplogin mail-test).\r\n\r\n"+
		"It was sent through %s at %s, so mail delivery works.\r\n", appName, server, now.UTC().Format(time.RFC1123))
	return compose(from, to, appName+" test message", []byte(text), nil, now)
}

// compose validates the recipient, then builds the message. from is
// already validated.
func compose(from *mail.Address, to, subject string, text, html []byte, now time.Time) (message, error) {
	rcpt, err := parseRecipient(to)
	if err != nil {
		return message{}, err
	}
	e := email.NewEmail()
	e.From = from.String()
	e.To = []string{rcpt}
	e.Subject = subject
	e.Text = text
	e.HTML = html
	e.Headers.Set("Message-ID", messageID(from.Address))
	e.Headers.Set("Date", now.Format(time.RFC1123Z))
	// Tell auto-responders to stay quiet (RFC 3834).
	e.Headers.Set("Auto-Submitted", "auto-generated")
	raw, err := e.Bytes()
	if err != nil {
		return message{}, fmt.Errorf("compose: %w", err)
	}
	return message{from: from.Address, to: rcpt, raw: raw}, nil
}

func validFor(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	switch {
	case m <= 1:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", m)
	}
}

// messageID is <random@from-domain>: unique without naming this host.
func messageID(from string) string {
	domain := from[strings.LastIndexByte(from, '@')+1:]
	return "<" + rand.Text() + "@" + domain + ">"
}

// CodeFromMessage returns the code in a message this package composed (an
// .eml file from the dev server's outbox): the line of the text part that is
// only digits. Tests, the tmux script and the load generator use it.
func CodeFromMessage(raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("read message: %w", err)
	}
	body := msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := textPart(msg.Header.Get("Content-Type"), body)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(line) >= 4 && len(line) <= 12 && strings.Trim(line, "0123456789") == "" {
			return line, nil
		}
	}
	return "", errors.New("no code line in the text part")
}

// textPart returns the decoded text/plain part of a body.
func textPart(contentType string, body io.Reader) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type: %w", err)
	}
	if mt == "text/plain" {
		return io.ReadAll(body)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return nil, fmt.Errorf("no text part in %s", mt)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			return nil, fmt.Errorf("no text/plain part: %w", err)
		}
		if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" {
			return io.ReadAll(p)
		}
	}
}
