package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/log/v2"
	"github.com/go-logfmt/logfmt"
)

// record is one log line: its keys in order and their values.
type record struct {
	line string
	keys []string
	kv   map[string]string
}

// parseLogfmt reads logfmt lines into records.
func parseLogfmt(t *testing.T, text string) []record {
	t.Helper()
	var out []record
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		d := logfmt.NewDecoder(strings.NewReader(line))
		r := record{line: line, kv: map[string]string{}}
		for d.ScanRecord() {
			for d.ScanKeyval() {
				k := string(d.Key())
				r.keys = append(r.keys, k)
				r.kv[k] = string(d.Value())
			}
		}
		if err := d.Err(); err != nil {
			t.Fatalf("not logfmt: %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// localLoginLog logs in with the local app under tmux, a wrong code first,
// and returns its operator log.
func localLoginLog(t *testing.T, addr string) string {
	t.Helper()
	dir := t.TempDir()
	outbox, logPath := filepath.Join(dir, "outbox"), filepath.Join(dir, "otplogin.log")
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox, "OTPLOGIN_LOG_FILE=" + logPath}, binary, true)
	s.waitScreen("Email")
	s.typeText(addr)
	s.press("Enter")
	s.waitScreen("We sent a code")
	code := codeFor(t, outbox, addr)
	s.typeText(wrongCode(code))
	s.press("Enter")
	s.waitScreen("4 attempts left")
	s.typeText(code)
	s.press("Enter")
	if status, _ := s.waitExit(); status != "0" {
		t.Fatalf("local login: status %s", status)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serveLoginLog logs in over SSH to a serve in this process, a wrong code
// first, and returns serve's log.
func serveLoginLog(t *testing.T, addr string) string {
	t.Helper()
	srv, smtpArgs := relay(t, "")
	s := startServeRun(t, nil, smtpArgs...)
	c := startTmux(t, 80, 24, nil, sshCommand(s.sshPort), false)
	c.waitScreen("Email")
	c.typeText(addr)
	c.press("Enter")
	c.waitScreen("We sent a code")
	code := codeFrom(t, srv, addr)
	c.typeText(wrongCode(code))
	c.press("Enter")
	c.waitScreen("4 attempts left")
	c.typeText(code)
	c.press("Enter")
	c.waitScreen("Verified")
	c.press("Enter")
	eventually(t, "the session's end in the log", func() bool { return strings.Contains(s.logs.String(), `msg="session end"`) })
	return s.logs.String()
}

// maskedAddress is what an address looks like in the log.
var maskedAddress = regexp.MustCompile(`^[^\s@]?\*\*\*@\S+$`)

// TestLogKeysBothModes logs in the same way with the local app and over
// SSH and checks the operator's logs of both: RFC 3339 times with a zone,
// one key per concept (a masked address is always addr=, a network address
// listen= or remote=, never addr=; no synonyms), and the same message and
// keys for the same event in both modes.
func TestLogKeysBothModes(t *testing.T) {
	needTool(t, "tmux")
	needTool(t, "ssh")
	const addr = "frank@example.com"
	modes := map[string][]record{
		"local": parseLogfmt(t, localLoginLog(t, addr)),
		"serve": parseLogfmt(t, serveLoginLog(t, addr)),
	}
	synonyms := []string{"address", "to", "email", "mail", "ip", "remote_addr", "user", "reason_text"}
	byMsg := map[string]map[string]record{} // msg -> mode -> the first line
	for mode, recs := range modes {
		for _, r := range recs {
			if _, err := time.Parse(time.RFC3339Nano, r.kv["time"]); err != nil || r.keys[0] != "time" {
				t.Errorf("%s: time %q is not RFC 3339 with a zone, first: %q", mode, r.kv["time"], r.line)
			}
			for _, k := range r.keys {
				v := r.kv[k]
				switch {
				case slices.Contains(synonyms, k):
					t.Errorf("%s: key %s= in %q: one key per concept", mode, k, r.line)
				case maskedAddress.MatchString(v) && k != "addr":
					t.Errorf("%s: a masked address under %s= in %q, want addr=", mode, k, r.line)
				case k == "addr" && !maskedAddress.MatchString(v):
					t.Errorf("%s: addr=%q is not a masked address: %q", mode, v, r.line)
				}
				if _, err := netip.ParseAddrPort(v); err == nil && k != "listen" && k != "remote" {
					t.Errorf("%s: a network address under %s= in %q, want listen= or remote=", mode, k, r.line)
				}
				if strings.Contains(v, "frank@") {
					t.Errorf("%s: an address unmasked: %q", mode, r.line)
				}
			}
			msg := r.kv["msg"]
			if byMsg[msg] == nil {
				byMsg[msg] = map[string]record{}
			}
			if _, ok := byMsg[msg][mode]; !ok {
				byMsg[msg][mode] = r
			}
		}
	}
	for _, msg := range []string{"code requested", "verify failed", "verified", "session end"} {
		local, okL := byMsg[msg]["local"]
		served, okS := byMsg[msg]["serve"]
		if !okL || !okS {
			t.Errorf("%q: in local %v, in serve %v; want both", msg, okL, okS)
			continue
		}
		// Serve's lines also name the session and the connection.
		for _, k := range local.keys {
			if _, ok := served.kv[k]; !ok && k != "client" || k == "client" && local.kv[k] != "local" {
				t.Errorf("%q: local has %s=, serve does not:\n local %q\n serve %q", msg, k, local.line, served.line)
			}
		}
		for _, k := range served.keys {
			if _, ok := local.kv[k]; !ok && !slices.Contains([]string{"session", "remote", "bytes_in"}, k) {
				t.Errorf("%q: serve has %s=, local does not:\n local %q\n serve %q", msg, k, local.line, served.line)
			}
		}
	}
	for mode := range modes {
		end := byMsg["session end"][mode]
		if end.kv["outcome"] != "verified" || end.kv["addr"] != "f***@example.com" || end.kv["duration"] == "" {
			t.Errorf("%s: session end %q, want outcome, addr and duration", mode, end.line)
		}
		if _, ok := byMsg["session ended"][mode]; ok {
			t.Errorf("%s: a 'session ended' line: the end of a session is 'session end'", mode)
		}
	}
}

// TestLogger checks each log format's shape, RFC 3339 times with a zone in
// every one, that the default is the styled text only on a terminal, and
// the level.
func TestLogger(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		want     string
	}{
		{"", false, `level=info msg="session end" addr=a***@example.com`},
		{"logfmt", true, `level=info msg="session end" addr=a***@example.com`},
		{"", true, "INFO  session end addr=a***@example.com"},
		{"text", false, "INFO  session end addr=a***@example.com"},
		{"json", false, `"level":"info","msg":"session end","addr":"a***@example.com"`},
	} {
		var buf strings.Builder
		l := newLogger(&buf, tc.format, log.InfoLevel, tc.terminal)
		l.Info("session end", "addr", "a***@example.com")
		got := buf.String()
		if !strings.Contains(got, tc.want) {
			t.Errorf("format %q, terminal %v: got %q, want it to hold %q", tc.format, tc.terminal, got, tc.want)
		}
		var stamp string
		if tc.format == "json" {
			var v map[string]any
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Fatal(err)
			}
			stamp, _ = v["time"].(string)
		} else {
			stamp = strings.TrimPrefix(strings.Fields(got)[0], "time=")
		}
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Errorf("format %q: time %q is not RFC 3339: %v", tc.format, stamp, err)
		}
	}
	var buf strings.Builder
	l := newLogger(&buf, "logfmt", log.WarnLevel, false)
	l.Info("quiet")
	l.Warn("loud")
	if got := buf.String(); strings.Contains(got, "quiet") || !strings.Contains(got, "loud") {
		t.Errorf("at warn: %q", got)
	}
}
