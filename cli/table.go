package cli

import (
	"encoding/hex"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"charm.land/log/v2"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/load"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
)

// Config is what the command line and the environment say, in the typed
// configurations of the packages that do the work.
type Config struct {
	Mail  mail.Config
	OTP   otp.Config
	Serve serve.Config

	Outbox    string    // the dev mail server's outbox; "": devserver.DefaultOutbox()
	LogFile   string    // the local app's operator log; "": next to the outbox
	LogFormat string    // serve's log on stderr: text, logfmt, json; "": text on a terminal
	LogLevel  log.Level // the least level logged
	RedisURL  string    // "": codes in memory

	RedisAllowCleartext bool   // redis:// beyond loopback
	RedisCAFile         string // extra roots for rediss://
	DebugAddr           string // loopback address of /stats and /debug/pprof; "": off
	MetricsAddr         string // address of /metrics, /healthz and /readyz; "": off
	HealthReady         bool   // health --ready: ask /readyz, not /healthz

	// Accessible asks for line prompts instead of screens.
	Accessible bool

	// DevMailPublic lets serve listen beyond loopback while mail goes to
	// the dev mail server.
	DevMailPublic bool

	MailTestTo string       // mail-test --to, normalised
	OutboxWait bool         // outbox --wait
	Load       load.Options // otplogin load's flags

	// smtpURL is the server as --smtp-url (OTPLOGIN_SMTP_URL) gave it;
	// fromURL says that c.Mail's server came from it.
	smtpURL mail.Config
	fromURL bool
}

// The settings other code refers to by name.
var (
	smtpURL = def(setting{Flag: "smtp-url", Env: "OTPLOGIN_SMTP_URL", For: cmdMail, Secret: true,
		Help:    "server to send mail through, smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465",
		More:    "Percent-encode `@ : / # ? %` in the user and password; a Gmail app password may keep its spaces. `smtp://host:25?security=none` only for a loopback server. A password in a flag shows in `ps`: prefer the variable.",
		Default: "the built-in dev mail server"},
		parsed(mail.ParseURL), mail.Config{}, func(c *Config) *mail.Config { return &c.smtpURL })
	smtpHost = def(setting{Flag: "smtp-host", Env: "OTPLOGIN_SMTP_HOST", For: cmdMail, MailField: "Host",
		Help: "host of the SMTP server, to give the server in parts instead of a URL"},
		text(nil), "", func(c *Config) *string { return &c.Mail.Host })
	smtpPort = def(setting{Flag: "smtp-port", Env: "OTPLOGIN_SMTP_PORT", For: cmdMail, MailField: "Port",
		Help: "port of the SMTP server", Default: "587, or 465 with security tls"},
		whole(1, 65535), 0, func(c *Config) *int { return &c.Mail.Port })
	smtpUsername = def(setting{Flag: "smtp-username", Env: "OTPLOGIN_SMTP_USERNAME", For: cmdMail, MailField: "Username",
		Help: "user name on the SMTP server"},
		text(nil), "", func(c *Config) *string { return &c.Mail.Username })
	smtpPassword = def(setting{Env: "OTPLOGIN_SMTP_PASSWORD", For: cmdMail, MailField: "Password", Secret: true,
		Help: "password on the SMTP server"},
		verbatim(), "", func(c *Config) *string { return &c.Mail.Password })
	smtpSecurity = def(setting{Flag: "smtp-security", Env: "OTPLOGIN_SMTP_SECURITY", For: cmdMail, MailField: "Security",
		Help: "how the SMTP connection is protected", Default: "from the port"},
		oneOf([]string{"starttls", "tls", "none"}, []mail.Security{mail.StartTLS, mail.ImplicitTLS, mail.NoTLS}),
		"", func(c *Config) *mail.Security { return &c.Mail.Security })

	redisURL = def(setting{Flag: "redis-url", Env: "OTPLOGIN_REDIS_URL", For: cmdService, Secret: true,
		Help:    "share codes and limits between replicas through Redis: rediss://[user:pass@]host:port/db (redis:// without TLS), ?addr=host:port for each more Cluster node, or ?master_name=NAME&addr=... for Sentinel; needs OTPLOGIN_SECRET",
		More:    "A password in a flag shows in `ps`: prefer the variable.",
		Default: "codes in memory"},
		text(nil), "", func(c *Config) *string { return &c.RedisURL })
	redisAllowCleartext = def(setting{Flag: "redis-allow-cleartext", Env: "OTPLOGIN_REDIS_ALLOW_CLEARTEXT", For: cmdService,
		Help: "allow redis:// without TLS to a server beyond loopback, on a network you trust"},
		boolean(), false, func(c *Config) *bool { return &c.RedisAllowCleartext })
	redisCAFile = def(setting{Flag: "redis-ca-file", Env: "OTPLOGIN_REDIS_CA_FILE", For: cmdService,
		Help: "extra PEM roots for a rediss:// server with a private CA", Default: "the system roots"},
		text(nil), "", func(c *Config) *string { return &c.RedisCAFile })
	secret = def(setting{Env: "OTPLOGIN_SECRET", For: cmdService, Secret: true,
		More:    "Every replica sharing a Redis needs the same one.",
		Help:    "key the codes are hashed with, 32 bytes or more (openssl rand -hex 32); required with Redis",
		Default: "random, per process"},
		parsed(parseSecret), nil, func(c *Config) *[]byte { return &c.OTP.Key })

	outbox = def(setting{Flag: "outbox", Env: "OTPLOGIN_OUTBOX", For: cmdMail | cmdOutbox,
		Help:    "folder where the dev mail server saves messages (0700 folder, 0600 files)",
		Default: "~/.cache/otplogin/outbox"},
		text(nil), "", func(c *Config) *string { return &c.Outbox })
	logFile = def(setting{Flag: "log-file", Env: "OTPLOGIN_LOG_FILE", For: cmdLocal,
		Help:    "operator log of the local app, in logfmt (addresses masked, never a code)",
		Default: "otplogin.log next to the outbox"},
		text(nil), "", func(c *Config) *string { return &c.LogFile })
	hostKey = def(setting{Flag: "host-key", Env: "OTPLOGIN_HOST_KEY", For: cmdServe,
		Help:    "host key file of the SSH server, ed25519, created on first start (0600) and reused; a file other users can read is refused, as sshd does",
		Default: "~/.config/otplogin/ssh_host_ed25519_key"},
		text(nil), "", func(c *Config) *string { return &c.Serve.HostKeyPath })
	mailTestTo = def(setting{Flag: "to", For: cmdMailTest,
		Help: "address to send the test message to (required)"},
		parsed(otp.NormalizeAddress), "", func(c *Config) *string { return &c.MailTestTo })
	devMailPublic = def(setting{Flag: "dev-mail-public", Env: "OTPLOGIN_DEV_MAIL_PUBLIC", For: cmdServe,
		Help: "let serve listen beyond loopback with the dev mail server, whose codes only this host's outbox sees"},
		boolean(), false, func(c *Config) *bool { return &c.DevMailPublic })
	metricsAddr = def(setting{Flag: "metrics-addr", Env: "OTPLOGIN_METRICS_ADDR", For: cmdServe | cmdHealth,
		Help:    "address and port of the operator endpoint: /metrics for Prometheus, /healthz and /readyz for balancers and container health checks (otplogin health asks it); 127.0.0.1:23235 for this host only, :23235 for a Prometheus or balancer elsewhere",
		More:    "It shows counters and health, never an address or a client, and answers only requests that name it by IP address or `localhost`.",
		Default: "off"},
		text(checkHostPort), "", func(c *Config) *string { return &c.MetricsAddr })
	appName = def(setting{Flag: "app-name", Env: "OTPLOGIN_APP_NAME", For: cmdMail, MailField: "AppName",
		Help: "name of the application, in the screens' title and the email's subject and body: your product's"},
		text(nil), mail.DefaultAppName, func(c *Config) *string { return &c.Mail.AppName })
	templateDir = def(setting{Flag: "template-dir", Env: "OTPLOGIN_TEMPLATE_DIR", For: cmdService, MailField: "TemplateDir",
		Help:    "folder whose code.txt and code.html replace the code email's templates (either or both), checked at start: they must show {{.Code}} and {{.ValidFor}} or {{.Expires}}",
		More:    "Start from `mail/templates/`; the templates also see `{{.AppName}}` and `{{.Subject}}`, and code.txt must show the code on a line of its own. The HTML goes through Go's html/template, which escapes what it shows.",
		Default: "the built-in templates"},
		text(nil), "", func(c *Config) *string { return &c.Mail.TemplateDir })
	listen = def(setting{Flag: "listen", Env: "OTPLOGIN_LISTEN", For: cmdServe,
		Help: "address the SSH server listens on; :23234 accepts connections from other hosts"},
		text(checkHostPort), serve.DefaultListen, func(c *Config) *string { return &c.Serve.Listen })
)

// table is every setting of otplogin, in the order of --help and the
// README. Adding a setting is adding an entry here.
var table = []*setting{
	smtpURL,
	smtpHost,
	smtpPort,
	smtpUsername,
	smtpPassword,
	smtpSecurity,
	def(setting{Flag: "from", Env: "OTPLOGIN_MAIL_FROM", For: cmdMail, MailField: "From",
		Help: `sender, "Name <addr>" or addr`, Default: "the SMTP user name"},
		text(nil), "", func(c *Config) *string { return &c.Mail.From }),
	appName,
	def(setting{Flag: "subject", Env: "OTPLOGIN_MAIL_SUBJECT", For: cmdMail, MailField: "Subject",
		Help:    "subject of the code email; never the code, since subjects show on lock screens",
		Default: "Your otplogin verification code, with --app-name's name"},
		text(nil), "", func(c *Config) *string { return &c.Mail.Subject }),
	templateDir,
	def(setting{Flag: "smtp-helo", Env: "OTPLOGIN_SMTP_HELO", For: cmdMail, MailField: "HeloName",
		Help: "name to greet the SMTP server with (EHLO)", Default: "the From domain"},
		text(nil), "", func(c *Config) *string { return &c.Mail.HeloName }),
	def(setting{Flag: "smtp-ca-file", Env: "OTPLOGIN_SMTP_CA_FILE", For: cmdMail, MailField: "CAFile",
		Help: "extra PEM roots for a private relay", Default: "the system roots"},
		text(nil), "", func(c *Config) *string { return &c.Mail.CAFile }),
	def(setting{Flag: "smtp-timeout", Env: "OTPLOGIN_SMTP_TIMEOUT", For: cmdMail, MailField: "Timeout",
		Help: "deadline for one whole send, retries included"},
		duration(mail.MinTimeout, mail.MaxTimeout), mail.DefaultTimeout, func(c *Config) *time.Duration { return &c.Mail.Timeout }),
	outbox,

	redisURL,
	redisAllowCleartext,
	redisCAFile,
	secret,
	def(setting{Flag: "code-ttl", OTPField: "TTL", Env: "OTPLOGIN_CODE_TTL", For: cmdService,
		Help: "how long a code verifies; the screen's countdown and the email follow it"},
		duration(time.Minute, time.Hour), otp.DefaultTTL, func(c *Config) *time.Duration { return &c.OTP.TTL }),

	logFile,
	def(setting{Flag: "accessible", Env: "ACCESSIBLE", For: cmdLocal,
		Help: "plain line prompts instead of screens, for screen readers and plain terminals (the variable is the one huh and gum read)"},
		boolean(), false, func(c *Config) *bool { return &c.Accessible }),
	def(setting{Flag: "log-format", Env: "OTPLOGIN_LOG_FORMAT", For: cmdServe,
		Help: "format of serve's log on stderr", Default: "text on a terminal, else logfmt"},
		oneOf([]string{"text", "logfmt", "json"}, []string{"text", "logfmt", "json"}), "",
		func(c *Config) *string { return &c.LogFormat }),
	def(setting{Flag: "log-level", Env: "OTPLOGIN_LOG_LEVEL", For: cmdService,
		Help: "least level of the operator log"},
		oneOf([]string{"debug", "info", "warn", "error"}, []log.Level{log.DebugLevel, log.InfoLevel, log.WarnLevel, log.ErrorLevel}),
		log.InfoLevel, func(c *Config) *log.Level { return &c.LogLevel }),

	listen,
	devMailPublic,
	hostKey,
	def(setting{Flag: "max-sessions", Env: "OTPLOGIN_MAX_SESSIONS", For: cmdServe,
		Help: "live SSH sessions on the server"},
		whole(1, maxSessions), serve.DefaultMaxSessions, func(c *Config) *int { return &c.Serve.MaxSessions }),
	def(setting{Flag: "max-sessions-per-client", Env: "OTPLOGIN_MAX_SESSIONS_PER_CLIENT", For: cmdServe,
		Help: "live SSH sessions per client address"},
		whole(1, maxSessions), serve.DefaultMaxSessionsPerClient, func(c *Config) *int { return &c.Serve.MaxSessionsPerClient }),
	def(setting{Flag: "conn-rate", Env: "OTPLOGIN_CONN_RATE", For: cmdServe,
		Help: "new SSH connections per second per client address, in bursts of up to 10"},
		number[rate.Limit](0, maxConnRate), serve.DefaultConnRate, func(c *Config) *rate.Limit { return &c.Serve.ConnRate }),
	def(setting{Flag: "read-rate", Env: "OTPLOGIN_READ_RATE", For: cmdServe,
		Help: "bytes per second all SSH connections together may send; once it is spent, each connection's reads wait their turn"},
		whole[int64](minReadRate, maxByteRate), serve.DefaultReadRate, func(c *Config) *int64 { return &c.Serve.ReadRate }),
	def(setting{Flag: "input-rate", Env: "OTPLOGIN_INPUT_RATE", For: cmdServe,
		Help: "bytes per second of typed input all sessions together may send beyond each session's first KiB; a session that needs more while it is spent is closed"},
		whole[int64](1<<10, maxByteRate), serve.DefaultInputRate, func(c *Config) *int64 { return &c.Serve.InputRate }),
	def(setting{Flag: "client-codes", OTPField: "Limits.ClientIssues", Env: "OTPLOGIN_CLIENT_CODES", For: cmdServe,
		Help: "codes per hour per client address"},
		whole(1, maxClientCodes), otp.DefaultLimits().ClientIssues, func(c *Config) *int { return &c.OTP.Limits.ClientIssues }),
	def(setting{Flag: "client-address-codes", OTPField: "Limits.ClientAddressIssues", Env: "OTPLOGIN_CLIENT_ADDRESS_CODES", For: cmdServe,
		Help: "codes per hour one client address may have sent to one email address", Default: "3, or --address-codes if lower"},
		whole(1, 100), 0, func(c *Config) *int { return &c.OTP.Limits.ClientAddressIssues }),
	def(setting{Flag: "address-codes", OTPField: "Limits.AddressIssues", Env: "OTPLOGIN_ADDRESS_CODES", For: cmdServe,
		Help: "codes per hour to one email address, all clients together"},
		whole(1, 100), otp.DefaultLimits().AddressIssues, func(c *Config) *int { return &c.OTP.Limits.AddressIssues }),
	def(setting{Flag: "client-failures", OTPField: "Limits.ClientFailures", Env: "OTPLOGIN_CLIENT_FAILURES", For: cmdServe,
		Help: "wrong codes per hour one client address may enter for one email address (all clients together: 100)"},
		whole(1, 100), otp.DefaultLimits().ClientFailures, func(c *Config) *int { return &c.OTP.Limits.ClientFailures }),
	def(setting{Flag: "codes-per-second", OTPField: "Limits.GlobalIssuesPerSecond", Env: "OTPLOGIN_CODES_PER_SECOND", For: cmdServe,
		Help: "codes the server mails per second, all addresses and clients together (shared by replicas through Redis)"},
		whole(1, 100_000), otp.DefaultLimits().GlobalIssuesPerSecond, func(c *Config) *int { return &c.OTP.Limits.GlobalIssuesPerSecond }),
	def(setting{Flag: "codes-per-hour", OTPField: "Limits.GlobalIssuesPerHour", Env: "OTPLOGIN_CODES_PER_HOUR", For: cmdServe,
		Help: "codes the server mails per hour, all addresses and clients together"},
		whole(1, 100_000_000), otp.DefaultLimits().GlobalIssuesPerHour, func(c *Config) *int { return &c.OTP.Limits.GlobalIssuesPerHour }),
	def(setting{Flag: "trusted-proxies", Env: "OTPLOGIN_TRUSTED_PROXIES", For: cmdServe,
		Help:    "load balancers whose PROXY protocol header (v1 or v2) names the real client: IP addresses or CIDR prefixes, comma-separated",
		Default: "none"},
		parsed(parsePrefixes), nil, func(c *Config) *[]netip.Prefix { return &c.Serve.TrustedProxies }),
	metricsAddr,
	def(setting{Flag: "debug-addr", Env: "OTPLOGIN_DEBUG_ADDR", For: cmdServe,
		Help: "loopback address and port for /stats and /debug/pprof, e.g. 127.0.0.1:6060", Default: "off"},
		text(checkLoopback), "", func(c *Config) *string { return &c.DebugAddr }),
}

// Upper bounds of the serve settings: far above what one host serves, low
// enough that the caps derived from them cannot overflow.
const (
	maxSessions    = 1_000_000
	maxConnRate    = 1_000_000
	maxClientCodes = 100_000 // otp.Limits.ClientIssues refuses more
	maxByteRate    = 1 << 30
	// minReadRate leaves room for a handshake and a read of the SSH layer
	// (4 KiB) in the budget.
	minReadRate = 16 << 10
)

// smtpParts are the settings that give the SMTP server in parts, which
// --smtp-url gives at once.
var smtpParts = []*setting{smtpHost, smtpPort, smtpUsername, smtpPassword, smtpSecurity}

// commandFlags are the commands' own flags: options of one run, not
// configuration, so they have no variable and no line in the README.
var commandFlags = []*setting{
	mailTestTo,
	def(setting{Flag: "wait", For: cmdOutbox,
		Help: "wait for a message to the address to arrive, until Ctrl+C"},
		boolean(), false, func(c *Config) *bool { return &c.OutboxWait }),

	def(setting{Flag: "addr", For: cmdLoad,
		Help: "the server's SSH address; loopback only"},
		text(checkLoopbackHost), load.DefaultOptions().Addr, func(c *Config) *string { return &c.Load.Addr }),
	def(setting{Flag: "sessions", For: cmdLoad,
		Help: "sessions to run"},
		whole(1, load.MaxSessions), load.DefaultOptions().Sessions, func(c *Config) *int { return &c.Load.Sessions }),
	def(setting{Flag: "concurrency", For: cmdLoad,
		Help: "sessions in flight at once; with --hold, how many connect at once"},
		whole(1, load.MaxConcurrency), load.DefaultOptions().Concurrency, func(c *Config) *int { return &c.Load.Concurrency }),
	def(setting{Flag: "timeout", For: cmdLoad,
		Help: "bound on the whole run"},
		duration(time.Second, 24*time.Hour), load.DefaultOptions().Timeout, func(c *Config) *time.Duration { return &c.Load.Timeout }),
	def(setting{Flag: "session-timeout", For: cmdLoad,
		Help: "bound on one login (or one idle session's first frame)"},
		duration(time.Second, time.Hour), load.DefaultOptions().SessionTimeout, func(c *Config) *time.Duration { return &c.Load.SessionTimeout }),
	def(setting{Flag: "hold", For: cmdLoad,
		Help: "idle run: open every session to the email screen and hold them all this long; 0 for a login run"},
		duration(0, 24*time.Hour), 0, func(c *Config) *time.Duration { return &c.Load.Hold }),
	def(setting{Flag: "settle", For: cmdLoad,
		Help: "wait up to this long for the server to go quiet before the run (the goroutine baseline), and for its goroutines to return to baseline after it"},
		duration(time.Millisecond, time.Hour), load.DefaultOptions().Settle, func(c *Config) *time.Duration { return &c.Load.Settle }),
	def(setting{Flag: "outbox", For: cmdLoad,
		Help: "the dev mail server's outbox folder (the server's --outbox); a fresh one is faster", Default: "~/.cache/otplogin/outbox"},
		text(checkFolder), "", func(c *Config) *string { return &c.Load.Outbox }),
	def(setting{Flag: "debug-addr", For: cmdLoad,
		Help: "the server's debug endpoint (its --debug-addr), for RSS, CPU, goroutines and sessions"},
		text(checkLoopbackHost), "", func(c *Config) *string { return &c.Load.DebugAddr }),
	def(setting{Flag: "pid", For: cmdLoad,
		Help: "the server's process id, to read RSS and CPU from /proc"},
		whole(1, math.MaxInt32), 0, func(c *Config) *int { return &c.Load.PID }),
	def(setting{Flag: "run-id", For: cmdLoad,
		Help: "goes into every address, load-<run-id>-<i>@example.test", Default: "random"},
		text(checkRunID), "", func(c *Config) *string { return &c.Load.RunID }),
	def(setting{Flag: "json", For: cmdLoad,
		Help: "print the report as JSON"},
		boolean(), false, func(c *Config) *bool { return &c.Load.JSON }),

	def(setting{Flag: "ready", For: cmdHealth,
		Help: "ask /readyz (the store and the mail relay answer) instead of /healthz (the server runs)"},
		boolean(), false, func(c *Config) *bool { return &c.HealthReady }),
}

// parseSecret reads OTPLOGIN_SECRET: hex, or any string, of at least 32
// bytes.
func parseSecret(v string) ([]byte, error) {
	if b, err := hex.DecodeString(v); err == nil && len(b) >= 32 {
		return b, nil
	}
	if len(v) < 32 {
		return nil, errors.New("must be at least 32 bytes (e.g. 64 hex digits from openssl rand -hex 32)")
	}
	return []byte(v), nil
}

// parsePrefixes reads a comma-separated list of IP addresses and CIDR
// prefixes.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, &partError{f, notA("an IP address or CIDR prefix")}
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkHostPort refuses an address without a port, which would fail only
// when the server listens.
func checkHostPort(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return notA("a host:port address, e.g. 127.0.0.1:23234 or :23234")
	}
	return nil
}

// checkLoopback refuses a debug endpoint off loopback: it has no
// authentication and shows the heap.
func checkLoopback(v string) error {
	if ap, err := netip.ParseAddrPort(v); err != nil || !ap.Addr().IsLoopback() {
		return notA("a loopback address and port, e.g. 127.0.0.1:6060")
	}
	return nil
}

// isLoopbackListen reports whether a listen address accepts connections
// from this host only: a loopback IP or "localhost". ":port" and "" listen
// everywhere.
func isLoopbackListen(v string) bool {
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || err == nil && ip.IsLoopback()
}

// checkLoopbackHost refuses a load target off this host: load tests run
// against this host only. (load checks again what a name resolves to.)
func checkLoopbackHost(v string) error {
	host, _, err := net.SplitHostPort(v)
	if ip, perr := netip.ParseAddr(host); err != nil || host != "localhost" && (perr != nil || !ip.IsLoopback()) {
		return notA("a loopback address and port, e.g. 127.0.0.1:23234")
	}
	return nil
}

// checkFolder refuses a path that is not a folder.
func checkFolder(v string) error {
	if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
		return notA("a folder")
	}
	return nil
}

// checkRunID refuses a run id that would not make an address.
func checkRunID(v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return notA("made of letters, digits and dashes")
		}
	}
	return nil
}
