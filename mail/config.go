package mail

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Security says how the connection to the SMTP server is protected.
type Security string

// The security modes. There is deliberately no opportunistic mode: a server
// that does not offer STARTTLS gets nothing, not a cleartext password.
const (
	// StartTLS connects in cleartext and requires the STARTTLS upgrade
	// before anything else is sent (port 587).
	StartTLS Security = "starttls"
	// ImplicitTLS speaks TLS from the first byte (port 465, "smtps").
	ImplicitTLS Security = "tls"
	// NoTLS is cleartext; it is only accepted for a loopback server.
	NoTLS Security = "none"
)

// Defaults and bounds.
const (
	DefaultAppName = "otplogin"
	MaxAppName     = 64 // bytes; the name goes into a subject line and a screen title
	DefaultTimeout = 20 * time.Second
	MinTimeout     = time.Second
	MaxTimeout     = 5 * time.Minute
)

// Config says how to reach the SMTP server and what the mail looks like.
// The zero value means "no SMTP server configured": the caller should start
// the dev mail server (package devserver) and use its SenderConfig.
type Config struct {
	Host     string
	Port     int // 0: 465 for ImplicitTLS, else 587
	Username string
	// Password may be a Gmail app password as Google shows it, four groups
	// of four letters: New drops the spaces.
	Password string
	// Security is StartTLS, ImplicitTLS or NoTLS; empty derives it from
	// the port (465: ImplicitTLS, else StartTLS).
	Security Security

	// From is "Name <addr>" or "addr". Empty defaults to Username when it
	// is an email address (the Gmail case).
	From string
	// HeloName is the EHLO name; empty means the From domain.
	HeloName string
	// CAFile is a PEM file of extra roots trusted besides the system ones.
	CAFile string
	// RootCAs, when set, replaces the system roots (the dev server's
	// self-signed certificate). CAFile is added to it.
	RootCAs *x509.CertPool
	// Timeout bounds one whole SendCode, retries included (default 20s).
	Timeout time.Duration
	// Subject is the message subject (default DefaultSubject(AppName)).
	// It must not contain the code: subjects show on lock screens.
	Subject string
	// AppName names the application in the subject and body of the code
	// email (default DefaultAppName): the operator's product.
	AppName string
	// TemplateDir, when set, is a folder whose code.txt and code.html
	// replace the built-in templates of the code email (either or both;
	// see mail/templates for the built-in ones). New checks them: they
	// must parse and, rendered with sample data, show the code ({{.Code}})
	// and when it expires ({{.ValidFor}} or {{.Expires}}), the text with
	// the code on a line of its own. They also see {{.AppName}} and
	// {{.Subject}}. The HTML goes through html/template, which escapes
	// everything it shows.
	TemplateDir string
	// Retry bounds retries of temporary failures; zero means DefaultRetry.
	Retry Retry
	// MaxIdle is how many authenticated connections are kept for reuse
	// (0: DefaultMaxIdle; negative: none, one connection per message).
	MaxIdle int
	// IdleTimeout is how long an unused connection is kept
	// (0: DefaultIdleTimeout). Keep it below the server's idle timeout.
	IdleTimeout time.Duration
}

// String describes c for the operator's log, e.g.
// "smtp://bot:***@smtp.example.com:587 from=..."; never the password.
// It also serves %v and %+v, so printing a Config cannot leak it.
func (c Config) String() string {
	if !c.Configured() {
		return "no SMTP server configured"
	}
	var b strings.Builder
	sec := c.security()
	if sec == ImplicitTLS {
		b.WriteString("smtps://")
	} else {
		b.WriteString("smtp://")
	}
	if c.Username != "" {
		b.WriteString(url.User(c.Username).String())
		b.WriteString(":***@")
	}
	b.WriteString(c.Addr())
	if sec == NoTLS {
		b.WriteString("?security=none")
	}
	if c.From != "" {
		fmt.Fprintf(&b, " from=%q", c.From)
	}
	return b.String()
}

// GoString keeps %#v from printing the password too.
func (c Config) GoString() string { return "mail.Config{" + c.String() + "}" }

// Configured reports whether an SMTP server was configured.
func (c Config) Configured() bool { return c.Host != "" }

// Addr is host:port with the port default applied.
func (c Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port()))
}

func (c Config) port() int {
	if c.Port != 0 {
		return c.Port
	}
	if c.security() == ImplicitTLS {
		return 465
	}
	return 587
}

func (c Config) security() Security {
	if c.Security != "" {
		return c.Security
	}
	if c.Port == 465 {
		return ImplicitTLS
	}
	return StartTLS
}

// A FieldError is a Config field with a value that cannot work. Field is
// the field's name ("Port", "From"); Err says why, in words for the
// operator, and never holds the password. Callers that took the value from
// somewhere (a flag, a variable) map Field back to it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "mail: " + e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// ParseURL parses smtp://user:pass@host:587 (STARTTLS required),
// smtps://user:pass@host:465 (implicit TLS) or, for a loopback server only,
// smtp://host:25?security=none. User and password are percent-decoded; a
// Gmail app password shown as four groups of four letters loses its spaces.
// The error never contains the password.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return Config{}, errors.New("not a valid URL (percent-encode @ / : # ? % in the user name and password)")
	}
	var c Config
	switch u.Scheme {
	case "smtp":
		c.Security = StartTLS
	case "smtps":
		c.Security = ImplicitTLS
	default:
		return Config{}, fmt.Errorf("scheme %q is not smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return Config{}, errors.New("missing host (want smtp://user:pass@host:587)")
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" {
		return Config{}, errors.New("must not have a path or fragment")
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if c.Port, err = parsePort(p); err != nil {
			return Config{}, err
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		pass, _ := u.User.Password()
		c.Password = stripAppPassword(pass)
	}
	for k, v := range u.Query() {
		if k != "security" || len(v) != 1 {
			return Config{}, fmt.Errorf("unknown query parameter %q (only security=none)", k)
		}
		if v[0] != string(NoTLS) || c.Security != StartTLS {
			return Config{}, fmt.Errorf("security=%q: only smtp://…?security=none is allowed; the scheme picks TLS", v[0])
		}
		c.Security = NoTLS
	}
	return c, nil
}

// DefaultSubject is the subject of the code email for the application
// appName when Config.Subject is empty.
func DefaultSubject(appName string) string {
	if appName == "" {
		appName = DefaultAppName
	}
	return "Your " + appName + " verification code"
}

// checkAppName refuses a name that cannot go into a subject line and a
// terminal's title: control characters, or too long.
func checkAppName(name string) error {
	if strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) {
		return errors.New("must be printable text, without control characters")
	}
	if len(name) > MaxAppName {
		return fmt.Errorf("must be at most %d bytes, got %d", MaxAppName, len(name))
	}
	return nil
}

// ParseSecurity accepts "starttls", "tls" (alias "smtps") or "none".
func ParseSecurity(s string) (Security, error) {
	switch strings.ToLower(s) {
	case "starttls":
		return StartTLS, nil
	case "tls", "smtps":
		return ImplicitTLS, nil
	case "none":
		return NoTLS, nil
	}
	return "", fmt.Errorf("%q is not starttls, tls or none", s)
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

// appPassword is how Google shows an app password: "abcd efgh ijkl mnop".
// Only that exact shape loses its spaces; any other password is kept as is.
var appPassword = regexp.MustCompile(`^[a-z]{4}( [a-z]{4}){3}$`)

func stripAppPassword(p string) string {
	if appPassword.MatchString(p) {
		return strings.ReplaceAll(p, " ", "")
	}
	return p
}

// ParseFrom validates a From value ("Name <addr>" or "addr") and returns it
// parsed. Display names with commas are refused because jordan-wright/email
// splits header values on commas and would write the pieces unencoded.
func ParseFrom(s string) (*mail.Address, error) {
	a, err := parseAddress(s)
	if err != nil {
		return nil, err
	}
	if strings.Contains(a.Name, ",") {
		return nil, fmt.Errorf("%q: the display name must not contain a comma", s)
	}
	return a, nil
}

// Validate checks c. A Config that is not Configured is valid when its
// message settings are. Each error is a *FieldError naming the field.
func (c Config) Validate() error {
	if c.Timeout != 0 && (c.Timeout < MinTimeout || c.Timeout > MaxTimeout) {
		return fieldError("Timeout", "%s is outside %s..%s", c.Timeout, MinTimeout, MaxTimeout)
	}
	if c.IdleTimeout < 0 {
		return fieldError("IdleTimeout", "%s is negative", c.IdleTimeout)
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		return fieldError("Subject", "must be one line")
	}
	if err := checkAppName(c.AppName); err != nil {
		return &FieldError{Field: "AppName", Err: err}
	}
	if c.From != "" {
		if _, err := ParseFrom(c.From); err != nil {
			return &FieldError{Field: "From", Err: err}
		}
	}
	if !c.Configured() {
		return nil
	}
	if strings.ContainsAny(c.Host, " \t\r\n/@[]") {
		return fieldError("Host", "%q is not a host name", c.Host)
	}
	if _, err := netip.ParseAddr(c.Host); err != nil && strings.Contains(c.Host, ":") {
		// smtp.example.com:587 would be dialled as [smtp.example.com:587]:587
		// and fail at every send with a lookup error.
		return fieldError("Host", "%q: give the port on its own, not in the host name", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fieldError("Port", "%d is not a port number", c.Port)
	}
	if c.security() == StartTLS && c.port() == 465 {
		// The server waits for a TLS hello and the client for a greeting:
		// every send would hang until the timeout.
		return fieldError("Security", "port 465 expects TLS from the first byte: use smtps:// or security tls")
	}
	switch c.Security {
	case "", StartTLS, ImplicitTLS:
	case NoTLS:
		if !isLoopback(c.Host) {
			return fieldError("Security", "none (cleartext) is only allowed for a loopback server, not %q", c.Host)
		}
	default:
		return fieldError("Security", "%q is not starttls, tls or none", string(c.Security))
	}
	if (c.Username == "") != (c.Password == "") {
		return fieldError("Username", "user name and password go together; set both or neither")
	}
	if strings.ContainsAny(c.Username, "\r\n\x00") {
		return fieldError("Username", "contains a control character")
	}
	if strings.ContainsAny(c.Password, "\r\n\x00") {
		return fieldError("Password", "contains a control character")
	}
	if c.From == "" {
		if _, err := parseAddress(c.Username); err != nil {
			return fieldError("From", "required (the user name is not an address to default to)")
		}
	}
	if c.HeloName != "" {
		if strings.ContainsAny(c.HeloName, " \t\r\n") {
			return fieldError("HeloName", "%q is not a host name", c.HeloName)
		}
		if strings.EqualFold(c.HeloName, "localhost") && !isLoopback(c.Host) {
			return fieldError("HeloName", "\"localhost\" is rejected by real relays; use your domain")
		}
	}
	return nil
}

// isLoopback reports whether host is a loopback IP or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
