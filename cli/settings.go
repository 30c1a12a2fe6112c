package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// A setting is one entry of the table of settings (table.go): a flag, the
// OTPLOGIN_* variable it mirrors, its type, default, bounds and help, and
// the field of Config it fills. Flags, the environment, --help, the man
// page, the errors and the README's table all come from these entries.
type setting struct {
	// Flag is the flag's name without dashes; "" for a setting read only
	// from the environment (a secret would show in ps).
	Flag string
	// Env is the OTPLOGIN_* variable; "" for a command's own flag, which
	// is not configuration (load's --sessions, mail-test's --to).
	Env string
	// Help is one line for --help and the README.
	Help string
	// More is README only: what does not fit on a help line.
	More string
	// Default describes the default in words when it is not a value one
	// could type ("the built-in dev mail server"); "" shows the value.
	Default string
	// For says which commands take the setting.
	For commands
	// Secret settings are never repeated in an error: they may hold a
	// password.
	Secret bool
	// MailField is the mail.Config field the setting fills, so that a
	// *mail.FieldError names the setting the operator gave.
	MailField string
	// OTPField is the otp.Config field the setting fills (a path such as
	// "Limits.ClientFailures"), so that an *otp.FieldError names it.
	OTPField string

	value value
}

// commands is a set of the commands that take a setting.
type commands uint8

const (
	cmdLocal    commands = 1 << iota // otplogin: the login in this terminal
	cmdServe                         // otplogin serve
	cmdMailTest                      // otplogin mail-test
	cmdLoad                          // otplogin load
	cmdOutbox                        // otplogin outbox
	cmdHealth                        // otplogin health

	cmdMail    = cmdLocal | cmdServe | cmdMailTest // everything that sends mail
	cmdService = cmdLocal | cmdServe               // everything that issues codes
)

// names lists the commands in s for the README, in the order of the README.
func (s commands) names() []string {
	var out []string
	for _, c := range []struct {
		c    commands
		name string
	}{{cmdLocal, "otplogin"}, {cmdServe, "serve"}, {cmdMailTest, "mail-test"}, {cmdLoad, "load"}, {cmdOutbox, "outbox"}, {cmdHealth, "health"}} {
		if s&c.c != 0 {
			out = append(out, c.name)
		}
	}
	return out
}

// flagName is "--flag", or "" for a setting with no flag.
func (s *setting) flagName() string {
	if s.Flag == "" {
		return ""
	}
	return "--" + s.Flag
}

// label names the setting in a message: "--flag (ENV)", "ENV" or "--flag".
func (s *setting) label() string { return label(s.flagName(), s.Env) }

func label(flag, env string) string {
	switch {
	case flag == "":
		return env
	case env == "":
		return flag
	}
	return flag + " (" + env + ")"
}

// defaultText is the default as --help and the README show it; "" for none.
func (s *setting) defaultText() string {
	if s.Default != "" {
		return s.Default
	}
	return s.value.defaultText()
}

// typeName is the value's type as flags show it: int, duration, float, string
// or bool.
func (s *setting) typeName() string { return s.value.typeName() }

// want says what a good value is ("a whole number from 1 to 1000000"), or
// "" when the help says it.
func (s *setting) want() string { return s.value.want() }

// usage is the flag's help line. The default comes after it from the
// flag's DefValue.
func (s *setting) usage() string {
	u := s.Help
	if w := s.want(); w != "" {
		u += ": " + w
	}
	if s.Env != "" {
		u += " ($" + s.Env + ")"
	}
	return u
}

// fail is err, found with the value of s, as a *SettingError.
func (s *setting) fail(err error) *SettingError {
	return &SettingError{Flag: s.flagName(), Env: s.Env, Err: err}
}

// bad is the error for the value raw of s, which set refused with err.
func (s *setting) bad(raw string, err error) *SettingError {
	e := &SettingError{Flag: s.flagName(), Env: s.Env, Err: err}
	var (
		pe *partError
		na notA
	)
	switch {
	case s.Secret:
		// Never repeat a value that may hold a password.
	case errors.As(err, &pe):
		e.Value, e.Err = pe.part, pe.err
	case errors.As(err, &na):
		// "is not ..." reads after the value; other reasons are sentences
		// of their own.
		e.Value = raw
	}
	return e
}

// A SettingError is a setting whose value cannot work, shaped like
// *strconv.NumError. Its text names both the flag and the variable, so the
// operator finds the setting whichever way they gave it:
//
//	--max-sessions (OTPLOGIN_MAX_SESSIONS): "abc" is not a whole number from 1 to 1000000
type SettingError struct {
	Flag  string // "--max-sessions"; "" for a setting with no flag
	Env   string // "OTPLOGIN_MAX_SESSIONS"; "" for a command's own flag
	Value string // the value given, quoted in the text; "" when secret or beside the point
	Err   error  // why it cannot work
}

func (e *SettingError) Error() string {
	var b strings.Builder
	b.WriteString(label(e.Flag, e.Env))
	b.WriteString(": ")
	if e.Value != "" {
		b.WriteString(strconv.Quote(e.Value))
		b.WriteByte(' ')
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *SettingError) Unwrap() error { return e.Err }

// partError is a bad part of a list value: the error quotes the part, not
// the whole list.
type partError struct {
	part string
	err  error
}

func (e *partError) Error() string { return strconv.Quote(e.part) + " " + e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

// notA is the reason a value was refused when a kind says what it wants.
type notA string

func (w notA) Error() string { return "is not " + string(w) }

// value is the typed part of a setting: how to parse its text into Config,
// and what it defaults to.
type value interface {
	typeName() string
	want() string
	defaultText() string
	// reset stores the default in c.
	reset(c *Config)
	// set parses raw (not empty) into c; the error says why it cannot.
	set(c *Config, raw string) error
}

// A kind parses and prints one type of value.
type kind[T any] struct {
	typ    string // int, duration, float, string, bool
	wants  string // what a good value is; "" when parse says it
	parse  func(string) (T, error)
	format func(T) string // the default as typed; nil: never shown
}

// field is a kind with a default and the Config field it fills.
type field[T any] struct {
	kind[T]
	def T
	dst func(*Config) *T
}

func (f field[T]) typeName() string { return f.typ }
func (f field[T]) want() string     { return f.wants }
func (f field[T]) reset(c *Config)  { *f.dst(c) = f.def }

func (f field[T]) defaultText() string {
	if f.format == nil {
		return ""
	}
	return f.format(f.def)
}

func (f field[T]) set(c *Config, raw string) error {
	v, err := f.parse(raw)
	if err != nil {
		return err
	}
	*f.dst(c) = v
	return nil
}

// def makes a table entry: s, whose value is of kind k, defaults to def and
// goes into the field of Config that dst points to.
func def[T any](s setting, k kind[T], def T, dst func(*Config) *T) *setting {
	s.value = field[T]{kind: k, def: def, dst: dst}
	return &s
}

// whole is a whole number from lo to hi.
func whole[T ~int | ~int64](lo, hi T) kind[T] {
	w := notA(fmt.Sprintf("a whole number from %d to %d", lo, hi))
	return kind[T]{typ: "int", wants: string(w),
		parse: func(s string) (T, error) {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || n < int64(lo) || n > int64(hi) {
				return 0, w
			}
			return T(n), nil
		},
		format: func(n T) string {
			if n == 0 {
				return ""
			}
			return strconv.FormatInt(int64(n), 10)
		},
	}
}

// duration is a Go duration ("90s", "5m") from lo to hi.
func duration(lo, hi time.Duration) kind[time.Duration] {
	w := notA("a duration from " + formatDuration(lo) + " to " + formatDuration(hi))
	return kind[time.Duration]{typ: "duration", wants: string(w),
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil || d < lo || d > hi {
				return 0, w
			}
			return d, nil
		},
		format: func(d time.Duration) string {
			if d == 0 {
				return ""
			}
			return formatDuration(d)
		},
	}
}

// formatDuration prints d without the zero units time.Duration.String
// adds: 5m, not 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// number is a number above lo and at most hi.
func number[T ~float64](lo, hi T) kind[T] {
	w := notA("a number above " + formatFloat(float64(lo)) + " and at most " + formatFloat(float64(hi)))
	return kind[T]{typ: "float", wants: string(w),
		parse: func(s string) (T, error) {
			// ParseFloat also takes NaN, which every comparison rejects:
			// written as !(in bounds), the test refuses it, and Inf.
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || !(f > float64(lo) && f <= float64(hi)) {
				return 0, w
			}
			return T(f), nil
		},
		format: func(f T) string { return formatFloat(float64(f)) },
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// text is a string; check, when not nil, says why a value cannot work.
func text(check func(string) error) kind[string] {
	return kind[string]{typ: "string",
		parse: func(s string) (string, error) {
			s = strings.TrimSpace(s)
			if check != nil {
				if err := check(s); err != nil {
					return "", err
				}
			}
			return s, nil
		},
		format: func(s string) string { return s },
	}
}

// verbatim is a string taken as given, spaces and all (a password).
func verbatim() kind[string] {
	return kind[string]{typ: "string", parse: func(s string) (string, error) { return s, nil }}
}

// parsed is a value of type T that parse reads from a string; its errors
// say why a value cannot work.
func parsed[T any](parse func(string) (T, error)) kind[T] {
	return kind[T]{typ: "string", parse: func(s string) (T, error) { return parse(strings.TrimSpace(s)) }}
}

// oneOf is one of the names, each standing for the value at its index.
func oneOf[T comparable](names []string, values []T) kind[T] {
	w := notA(orList(names))
	return kind[T]{typ: "string", wants: string(w),
		parse: func(s string) (T, error) {
			s = strings.ToLower(strings.TrimSpace(s))
			for i, n := range names {
				if s == n {
					return values[i], nil
				}
			}
			var zero T
			return zero, w
		},
		format: func(v T) string {
			for i, x := range values {
				if x == v {
					return names[i]
				}
			}
			return ""
		},
	}
}

// boolean is true or false; a flag given alone means true.
func boolean() kind[bool] {
	return kind[bool]{typ: "bool",
		parse: func(s string) (bool, error) {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return false, notA("true or false")
			}
			return b, nil
		},
		format: func(b bool) string {
			if !b {
				return ""
			}
			return "true"
		},
	}
}

// orList is "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// flagValue is a setting's flag. It keeps the text given; read parses it
// with the same parser as the variable's text, so that a flag and a
// variable have one set of rules and one kind of error.
type flagValue struct {
	s   *setting
	raw string
}

func (f *flagValue) String() string     { return f.raw }
func (f *flagValue) Set(v string) error { f.raw = v; return nil }
func (f *flagValue) Type() string       { return f.s.typeName() }

// addFlags defines the flags of the settings in table that command takes,
// in the table's order.
func addFlags(fs *pflag.FlagSet, table []*setting, command commands) {
	fs.SortFlags = false
	for _, s := range table {
		if s.For&command == 0 || s.Flag == "" {
			continue
		}
		f := fs.VarPF(&flagValue{s: s}, s.Flag, "", s.usage())
		f.DefValue = s.defaultText()
		if s.typeName() == "bool" {
			f.NoOptDefVal = "true"
		}
	}
}

// source is where a setting's value came from.
type source uint8

const (
	unset    source = iota
	fromEnv         // an OTPLOGIN_* variable
	fromFlag        // a flag, which wins over the variable
)

// given is the text of each setting that was given, and where from.
type given map[*setting]givenValue

type givenValue struct {
	raw string
	src source
}

// lookup collects the settings of table that command takes from the flags
// in fs and the environment. A flag wins over the variable, even when it
// is empty (--outbox= means the default whatever the environment says).
func lookup(fs *pflag.FlagSet, getenv func(string) string, table []*setting, command commands) given {
	g := given{}
	for _, s := range table {
		if s.For&command == 0 {
			continue
		}
		if s.Flag != "" {
			if f := fs.Lookup(s.Flag); f != nil && f.Changed {
				g[s] = givenValue{f.Value.String(), fromFlag}
				continue
			}
		}
		if s.Env != "" {
			if v := getenv(s.Env); v != "" {
				g[s] = givenValue{v, fromEnv}
			}
		}
	}
	return g
}

// apply stores every setting's default in c, then parses the given ones in
// table order; the first bad one is the error.
func (g given) apply(c *Config, table []*setting) error {
	for _, s := range table {
		s.value.reset(c)
	}
	for _, s := range table {
		v, ok := g[s]
		if !ok || v.raw == "" {
			continue
		}
		if err := s.value.set(c, v.raw); err != nil {
			return s.bad(v.raw, err)
		}
	}
	return nil
}

// has reports whether s was given a value that is not empty.
func (g given) has(s *setting) bool { return g[s].raw != "" }
