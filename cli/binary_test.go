package cli

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// badValue is one value a setting must refuse, and what else the run needs
// for the refusal to be that setting's (the settings it depends on).
type badValue struct {
	value string
	env   []string // other settings, as variables
}

// TestBadSettings runs the real binary once for each bad value of every
// setting, given by its flag and by its variable: each run must exit 2
// with one line on stderr, and nothing on stdout, naming the flag and the
// variable, never a password. A setting without a case here fails the
// test; a whole number, duration, float, choice or bool gets one from its
// type.
func TestBadSettings(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	garbageKey := filepath.Join(dir, "garbage_key")
	for _, f := range []string{notADir, garbageKey} {
		if err := os.WriteFile(f, []byte("garbage\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	brokenTemplates := filepath.Join(dir, "templates")
	if err := os.Mkdir(brokenTemplates, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(brokenTemplates, "code.html"), []byte("<p>{{.Code}</p>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secretHex = "OTPLOGIN_SECRET=0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
	remote := []string{"OTPLOGIN_SMTP_HOST=smtp.example.com", "OTPLOGIN_MAIL_FROM=otp@example.com"}
	cases := map[*setting][]badValue{
		smtpURL: {
			{value: "ftp://u:hunter2@smtp.example.com"},
			{value: "smtp://u:hunter2@:587"},
			{value: "smtp://u:hunter2@smtp.example.com:465", env: []string{"OTPLOGIN_MAIL_FROM=otp@example.com"}},
		},
		smtpHost:                         {{value: "smtp.example.com:587", env: []string{"OTPLOGIN_MAIL_FROM=otp@example.com"}}},
		smtpUsername:                     {{value: "bot", env: remote}}, // without a password
		smtpPassword:                     {{value: "hunter2"}},          // without a host
		find("OTPLOGIN_MAIL_FROM"):       {{value: "not an address"}, {value: `"Example, Inc." <a@b.example>`}},
		find("OTPLOGIN_MAIL_SUBJECT"):    {{value: "Your code\nBcc: x@evil.example"}},
		find("OTPLOGIN_SMTP_HELO"):       {{value: "localhost", env: remote}},
		find("OTPLOGIN_SMTP_CA_FILE"):    {{value: filepath.Join(dir, "missing.pem"), env: remote}, {value: notADir, env: remote}},
		outbox:                           {{value: filepath.Join(notADir, "outbox")}},
		redisURL:                         {{value: "http://127.0.0.1:1", env: []string{secretHex}}, {value: "redis://192.0.2.7:6379", env: []string{secretHex}}},
		redisCAFile:                      {{value: notADir, env: []string{secretHex, "OTPLOGIN_REDIS_URL=rediss://127.0.0.1:1"}}},
		secret:                           {{value: "hunter2"}},
		logFile:                          {{value: filepath.Join(notADir, "otplogin.log")}},
		listen:                           {{value: "127.0.0.1"}, {value: "127.0.0.1:99999"}},
		hostKey:                          {{value: garbageKey}},
		find("OTPLOGIN_TRUSTED_PROXIES"): {{value: "10.0.0.0/8, lb.example"}},
		find("OTPLOGIN_DEBUG_ADDR"):      {{value: "0.0.0.0:6060"}, {value: ":6060"}},
		metricsAddr:                      {{value: "127.0.0.1"}},
		appName:                          {{value: "Acme\nLogin"}, {value: "Acme\x1b[2J"}},
		templateDir:                      {{value: notADir}, {value: brokenTemplates}},
		find("OTPLOGIN_MAX_SESSIONS"):    {{value: "0"}, {value: "9223372036854775807"}},
		find("OTPLOGIN_CONN_RATE"):       {{value: "+Inf"}, {value: "0"}},
		find("OTPLOGIN_CLIENT_CODES"):    {{value: "200000"}},
		find("OTPLOGIN_READ_RATE"):       {{value: "4096"}, {value: "2147483648"}},
		find("OTPLOGIN_INPUT_RATE"):      {{value: "0"}},
		find("OTPLOGIN_CODE_TTL"):        {{value: "30s"}, {value: "2h"}},
		mailTestTo:                       {{value: "not an address"}, {value: "a@x\r\nBcc: v@evil.example"}},
		findFlag(cmdLoad, "addr"):        {{value: "192.0.2.7:22"}},
		findFlag(cmdLoad, "debug-addr"):  {{value: "192.0.2.7:6060"}},
		findFlag(cmdLoad, "outbox"):      {{value: notADir}},
		findFlag(cmdLoad, "run-id"):      {{value: "a b@c"}},
	}
	for _, s := range slices.Concat(table, commandFlags) {
		if s.want() != "" && s.typeName() != "string" || s.typeName() == "bool" {
			cases[s] = append(cases[s], badValue{value: map[string]string{
				"int": "abc", "duration": "soon", "float": "NaN", "bool": "maybe"}[s.typeName()]})
		} else if s.want() != "" {
			cases[s] = append(cases[s], badValue{value: "no-such-choice"})
		}
		if len(cases[s]) == 0 {
			t.Errorf("%s has no bad value to test", s.label())
		}
	}

	for s, bad := range cases {
		command := firstCommand(s.For)
		for _, b := range bad {
			var ways []string
			if s.Flag != "" {
				ways = append(ways, "flag")
			}
			if s.Env != "" {
				ways = append(ways, "variable")
			}
			for _, way := range ways {
				t.Run(s.label()+"/"+way+"/"+b.value, func(t *testing.T) {
					t.Parallel()
					args, env := slices.Clone(command), slices.Clone(b.env)
					if way == "flag" {
						args = append(args, s.flagName()+"="+b.value)
					} else {
						env = append(env, s.Env+"="+b.value)
					}
					if slices.Equal(command, []string{"mail-test"}) && s != mailTestTo {
						args = append(args, "--to", "me@example.com")
					}
					r := runBinary(t, env, args...)
					assertOneLine(t, r, "otplogin: "+s.label()+": ")
				})
			}
		}
	}
}

// TestBadCommandLines checks the command line's own mistakes: exit 2 and
// one line, not the usage.
func TestBadCommandLines(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	for _, tc := range []struct {
		name string
		args []string
		want string // the line starts with it
	}{
		{"unknown flag", []string{"--bogus"}, "otplogin: unknown flag: --bogus"},
		{"unknown shorthand", []string{"serve", "-x"}, "otplogin: unknown shorthand flag: 'x' in -x"},
		{"flag without its value", []string{"serve", "--max-sessions"}, "otplogin: flag needs an argument: --max-sessions"},
		{"unknown command", []string{"frobnicate"}, `otplogin: unknown command "frobnicate"`},
		{"mistyped command", []string{"serv"}, `otplogin: unknown command "serv" (did you mean serve?)`},
		{"argument", []string{"serve", "now"}, `otplogin: unexpected argument "now"`},
		{"flag of another command", []string{"--listen", ":23234"}, "otplogin: unknown flag: --listen"},
		{"mail-test without --to", []string{"mail-test"}, "otplogin: --to: required"},
		{"Redis without the secret", []string{"--redis-url", "redis://127.0.0.1:1"}, "otplogin: OTPLOGIN_SECRET: required with --redis-url (OTPLOGIN_REDIS_URL)"},
		// Found only when the server listens, after the outbox and the
		// host key are made: still the only line, with no DEV MODE
		// warning before it.
		{"listen address in use", []string{"serve", "--listen", busy.Addr().String()}, "otplogin: --listen (OTPLOGIN_LISTEN): "},
		{"dev mail server beyond loopback", []string{"serve", "--listen", ":0"}, `otplogin: --listen (OTPLOGIN_LISTEN): ":0" is beyond loopback, but no SMTP server is set`},
		{"a client's share above the address's total", []string{"serve", "--address-codes", "2", "--client-address-codes", "3"}, "otplogin: --client-address-codes (OTPLOGIN_CLIENT_ADDRESS_CODES): must be 1..2, got 3"},
		{"both ways of giving the SMTP server", []string{"--smtp-url", "smtp://smtp.example.com", "--smtp-host", "smtp.example.com"}, "otplogin: --smtp-url (OTPLOGIN_SMTP_URL): set either this or --smtp-host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertOneLine(t, runBinary(t, nil, tc.args...), tc.want)
		})
	}
}

// assertOneLine checks a run that a bad setting stopped: exit 2, nothing on
// stdout, and exactly one line on stderr that starts with want.
func assertOneLine(t *testing.T, r result, want string) {
	t.Helper()
	if r.status != ExitUsage {
		t.Errorf("exit status %d, want %d", r.status, ExitUsage)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	if !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr = %q, want it to start with %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "hunter2") {
		t.Errorf("stderr repeats a password: %q", r.stderr)
	}
}

// firstCommand is the command line of the first command that takes a
// setting of s.
func firstCommand(s commands) []string {
	switch {
	case s&cmdLocal != 0:
		return nil
	case s&cmdServe != 0:
		return []string{"serve"}
	case s&cmdMailTest != 0:
		return []string{"mail-test"}
	case s&cmdOutbox != 0:
		return []string{"outbox", "x@example.com"}
	case s&cmdHealth != 0:
		return []string{"health"}
	}
	return []string{"load"}
}

// find is the setting of the variable env.
func find(env string) *setting {
	for _, s := range table {
		if s.Env == env {
			return s
		}
	}
	panic("no setting " + env)
}

// findFlag is command's own flag name.
func findFlag(command commands, name string) *setting {
	for _, s := range commandFlags {
		if s.For&command != 0 && s.Flag == name {
			return s
		}
	}
	panic("no flag " + name)
}
