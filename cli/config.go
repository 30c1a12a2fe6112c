package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/pflag"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
)

// readConfig reads the settings command takes from its flags in fs and the
// environment through getenv, and checks them together: everything a
// setting alone can get wrong is found here, before anything starts.
func readConfig(fs *pflag.FlagSet, getenv func(string) string, command commands) (*Config, error) {
	all := slices.Concat(table, commandFlags)
	g := lookup(fs, getenv, all, command)
	if err := g.chooseSMTPServer(); err != nil {
		return nil, err
	}
	c := &Config{}
	if err := g.apply(c, all); err != nil {
		return nil, err
	}
	if command&cmdMail != 0 {
		if err := c.resolveMail(g); err != nil {
			return nil, err
		}
	}
	if command == cmdServe && !c.Mail.Configured() && !c.DevMailPublic && !isLoopbackListen(c.Serve.Listen) {
		// Nobody beyond this host could read a code: an SMTP setting was
		// most likely forgotten.
		return nil, listen.fail(fmt.Errorf("%q is beyond loopback, but no SMTP server is set, so codes only reach the dev outbox here; set %s, or %s to mean it",
			c.Serve.Listen, smtpURL.label(), devMailPublic.label()))
	}
	if command&cmdService != 0 {
		if c.RedisURL != "" && len(c.OTP.Key) == 0 {
			return nil, secret.fail(fmt.Errorf("required with %s: replicas must share it; e.g. %s=$(openssl rand -hex 32)",
				redisURL.label(), secret.Env))
		}
		// Limits bound each other (a client's share is at most the
		// address's total), which no single setting can check.
		if err := otpError(c.OTP.Validate()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// otpError turns an *otp.FieldError into a *SettingError for the setting
// that fills the field. Other errors are returned as they are.
func otpError(err error) error {
	var fe *otp.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	for _, s := range table {
		if s.OTPField == fe.Field {
			return s.fail(fe.Err)
		}
	}
	return configError{err}
}

// chooseSMTPServer keeps one way of giving the SMTP server: --smtp-url or
// the parts (--smtp-host, ...). A flag wins over the environment, so
// --smtp-url on the command line sets aside parts left in the
// environment, and the other way round; both given the same way is an
// error.
func (g given) chooseSMTPServer() error {
	url, ok := g[smtpURL]
	if !ok {
		return nil
	}
	parts := unset
	for _, s := range smtpParts {
		if v, ok := g[s]; ok {
			parts = max(parts, v.src)
		}
	}
	switch {
	case parts == unset:
	case url.src > parts:
		for _, s := range smtpParts {
			delete(g, s)
		}
	case parts > url.src:
		delete(g, smtpURL)
	default:
		return smtpURL.fail(fmt.Errorf("set either this or %s and the other parts, not both", smtpHost.label()))
	}
	return nil
}

// resolveMail puts the server --smtp-url gave into c.Mail, and checks the
// mail settings together.
func (c *Config) resolveMail(g given) error {
	switch {
	case g.has(smtpURL):
		u := c.smtpURL
		c.Mail.Host, c.Mail.Port, c.Mail.Username, c.Mail.Password, c.Mail.Security = u.Host, u.Port, u.Username, u.Password, u.Security
		c.fromURL = true
	case !g.has(smtpHost):
		for _, s := range smtpParts {
			if g.has(s) {
				return s.fail(fmt.Errorf("set, but %s is empty", smtpHost.label()))
			}
		}
	}
	return c.mailError(c.Mail.Validate())
}

// mailError turns a *mail.FieldError into a *SettingError for the setting
// that filled the field; the server's fields came from --smtp-url when it
// gave them. Other errors are returned as they are.
func (c *Config) mailError(err error) error {
	var fe *mail.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	for _, s := range table {
		if s.MailField != fe.Field {
			continue
		}
		if c.fromURL && slices.Contains(smtpParts, s) {
			s = smtpURL
		}
		return s.fail(fe.Err)
	}
	return configError{err}
}
