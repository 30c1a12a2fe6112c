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
	DefaultSubject = "Your verification code"
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
	// Subject is the message subject (default "Your verification code").
	// It must not contain the code: subjects show on lock screens.
	Subject string
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

// Environment variable names read by ConfigFromEnv.
const (
	EnvURL      = "OTPLOGIN_SMTP_URL"
	EnvHost     = "OTPLOGIN_SMTP_HOST"
	EnvPort     = "OTPLOGIN_SMTP_PORT"
	EnvUsername = "OTPLOGIN_SMTP_USERNAME"
	EnvPassword = "OTPLOGIN_SMTP_PASSWORD"
	EnvSecurity = "OTPLOGIN_SMTP_SECURITY"
	EnvFrom     = "OTPLOGIN_MAIL_FROM"
	EnvSubject  = "OTPLOGIN_MAIL_SUBJECT"
	EnvHelo     = "OTPLOGIN_SMTP_HELO"
	EnvCAFile   = "OTPLOGIN_SMTP_CA_FILE"
	EnvTimeout  = "OTPLOGIN_SMTP_TIMEOUT"
)

// ConfigFromEnv reads the OTPLOGIN_SMTP_* and OTPLOGIN_MAIL_* variables
// through getenv (os.Getenv in main) and validates the result. The server
// comes either from OTPLOGIN_SMTP_URL or from the split HOST/PORT/USERNAME/
// PASSWORD/SECURITY variables. With no server set, the result is not
// Configured and only the message settings are filled in. Each error is one
// line that names the setting and never contains the password.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	rawURL := strings.TrimSpace(getenv(EnvURL))
	host := strings.TrimSpace(getenv(EnvHost))
	switch {
	case rawURL != "" && host != "":
		return Config{}, fmt.Errorf("%s: set either %s or %s, not both", EnvURL, EnvURL, EnvHost)
	case rawURL != "":
		if err := c.SetURL(rawURL); err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvURL, err)
		}
	case host != "":
		c.Host = host
		if p := strings.TrimSpace(getenv(EnvPort)); p != "" {
			n, err := parsePort(p)
			if err != nil {
				return Config{}, fmt.Errorf("%s: %w", EnvPort, err)
			}
			c.Port = n
		}
		c.Username = getenv(EnvUsername)
		c.Password = stripAppPassword(getenv(EnvPassword))
		if s := strings.TrimSpace(getenv(EnvSecurity)); s != "" {
			sec, err := ParseSecurity(s)
			if err != nil {
				return Config{}, fmt.Errorf("%s: %w", EnvSecurity, err)
			}
			c.Security = sec
		}
	default:
		for _, name := range []string{EnvPort, EnvUsername, EnvPassword, EnvSecurity} {
			if getenv(name) != "" {
				return Config{}, fmt.Errorf("%s: set but %s is empty", name, EnvHost)
			}
		}
	}
	c.From = strings.TrimSpace(getenv(EnvFrom))
	c.Subject = strings.TrimSpace(getenv(EnvSubject))
	c.HeloName = strings.TrimSpace(getenv(EnvHelo))
	c.CAFile = strings.TrimSpace(getenv(EnvCAFile))
	if t := strings.TrimSpace(getenv(EnvTimeout)); t != "" {
		d, err := ParseTimeout(t)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvTimeout, err)
		}
		c.Timeout = d
	}
	if err := c.Validate(); err != nil {
		if rawURL != "" {
			err = namedByURL(err)
		}
		return Config{}, err
	}
	return c, nil
}

// namedByURL renames an error about a server setting that came from
// OTPLOGIN_SMTP_URL, so that it names the variable the operator set.
func namedByURL(err error) error {
	msg := err.Error()
	for _, name := range []string{EnvHost, EnvPort, EnvUsername, EnvSecurity} {
		if rest, ok := strings.CutPrefix(msg, name+":"); ok {
			return errors.New(EnvURL + ":" + rest)
		}
	}
	return err
}

// SetURL replaces the server part of c (host, port, username, password,
// security) with what raw says; the message settings stay. Main uses it for
// a --smtp-url flag that overrides the environment.
func (c *Config) SetURL(raw string) error {
	u, err := ParseURL(raw)
	if err != nil {
		return err
	}
	c.Host, c.Port, c.Username, c.Password, c.Security = u.Host, u.Port, u.Username, u.Password, u.Security
	return nil
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

// ParseTimeout accepts a Go duration within [MinTimeout, MaxTimeout].
func ParseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 20s", s)
	}
	if d < MinTimeout || d > MaxTimeout {
		return 0, fmt.Errorf("%s is outside %s..%s", d, MinTimeout, MaxTimeout)
	}
	return d, nil
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
// message settings are. Errors name the environment variable.
func (c Config) Validate() error {
	if c.Timeout != 0 && (c.Timeout < MinTimeout || c.Timeout > MaxTimeout) {
		return fmt.Errorf("%s: %s is outside %s..%s", EnvTimeout, c.Timeout, MinTimeout, MaxTimeout)
	}
	if c.IdleTimeout < 0 {
		return errors.New("mail: negative IdleTimeout")
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		return fmt.Errorf("%s: must be one line", EnvSubject)
	}
	if c.From != "" {
		if _, err := ParseFrom(c.From); err != nil {
			return fmt.Errorf("%s: %w", EnvFrom, err)
		}
	}
	if !c.Configured() {
		return nil
	}
	if strings.ContainsAny(c.Host, " \t\r\n/@[]") {
		return fmt.Errorf("%s: %q is not a host name", EnvHost, c.Host)
	}
	if _, err := netip.ParseAddr(c.Host); err != nil && strings.Contains(c.Host, ":") {
		// smtp.example.com:587 would be dialled as [smtp.example.com:587]:587
		// and fail at every send with a lookup error.
		return fmt.Errorf("%s: %q: give the port in %s", EnvHost, c.Host, EnvPort)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%s: %d is not a port number", EnvPort, c.Port)
	}
	if c.security() == StartTLS && c.port() == 465 {
		// The server waits for a TLS hello and the client for a greeting:
		// every send would hang until the timeout.
		return fmt.Errorf("%s: port 465 expects TLS from the first byte: use smtps:// or security tls", EnvSecurity)
	}
	switch c.Security {
	case "", StartTLS, ImplicitTLS:
	case NoTLS:
		if !isLoopback(c.Host) {
			return fmt.Errorf("%s: none (cleartext) is only allowed for a loopback server, not %q", EnvSecurity, c.Host)
		}
	default:
		return fmt.Errorf("%s: %q is not starttls, tls or none", EnvSecurity, string(c.Security))
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%s: user name and password go together; set both or neither", EnvUsername)
	}
	if strings.ContainsAny(c.Username, "\r\n\x00") || strings.ContainsAny(c.Password, "\r\n\x00") {
		return fmt.Errorf("%s: user name or password contains a control character", EnvUsername)
	}
	if c.From == "" {
		if _, err := parseAddress(c.Username); err != nil {
			return fmt.Errorf("%s: required (the user name is not an address to default to)", EnvFrom)
		}
	}
	if c.HeloName != "" {
		if strings.ContainsAny(c.HeloName, " \t\r\n") {
			return fmt.Errorf("%s: %q is not a host name", EnvHelo, c.HeloName)
		}
		if strings.EqualFold(c.HeloName, "localhost") && !isLoopback(c.Host) {
			return fmt.Errorf("%s: \"localhost\" is rejected by real relays; use your domain", EnvHelo)
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
