package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otplogin/otplogin/mail/devserver"
)

// message is a minimal outbox message in the mail package's format: the
// code alone on a line of the text part.
func message(code string) []byte {
	return []byte("To: x@example.test\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nYour code:\r\n\r\n" + code + "\r\n\r\nIt expires in 5 minutes.\r\n")
}

func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	write := func(name, code string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), message(code), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("20261128T140203.000000001Z-1a2b3c4d-load-ab-1@example.test.eml", "111111")
	write("20261128T140204.000000001Z-5e6f7a8b-load-ab-1@example.test.eml", "222222") // newer
	write("20261128T140203.000000001Z-00000000-load-ab-10@example.test.eml", "101010")
	write(".incoming-123", "999999") // still being written

	o := NewOutbox(dir)
	for _, tc := range []struct{ addr, want string }{
		{"load-ab-1@example.test", "222222"},
		{"load-ab-10@example.test", "101010"},
		{"Load-AB-10@Example.TEST", "101010"}, // the outbox names are lower-case
	} {
		if got, err := o.Code(t.Context(), tc.addr); err != nil || got != tc.want {
			t.Errorf("Code(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}

	// A message that was not there at the last listing is found by the
	// next one, and a reader gives up when its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := o.Code(ctx, "load-ab-2@example.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Code of a missing message = %v, want a deadline error", err)
	}
	write("20261128T140205.000000001Z-99999999-load-ab-2@example.test.eml", "202020")
	if got, err := o.Code(t.Context(), "load-ab-2@example.test"); err != nil || got != "202020" {
		t.Errorf("Code of a late message = %q, %v", got, err)
	}
	if _, err := NewOutbox(filepath.Join(dir, "missing")).Code(t.Context(), "x@example.test"); err == nil {
		t.Error("Code in a missing folder succeeded")
	}
}

func TestOutboxRecipient(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"20261128T140203.123456789Z-1a2b3c4d-alice@example.com.eml", "alice@example.com", true},
		{"20261128T140203.123456789Z-1a2b3c4d-load-x-1@a-b.test.eml", "load-x-1@a-b.test", true},
		{".incoming-42", "", false},
		{"notes.txt", "", false},
		{"20261128T140203Z-short-a@b.eml", "", false},
	} {
		got, ok := devserver.Recipient(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("devserver.Recipient(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHTTPStats(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"sessions":7,"conns":8,"goroutines":91,"rss_bytes":1048576,"cpu_ns":2500000000}`))
	}))
	defer srv.Close()

	got, err := HTTPStats{URL: srv.URL + "/stats"}.Stats(t.Context())
	want := Sample{RSS: 1 << 20, Goroutines: 91, Sessions: 7, CPU: 2500 * time.Millisecond}
	if err != nil || got != want {
		t.Errorf("Stats = %+v, %v; want %+v", got, err, want)
	}
	// With a PID, /proc fills in what the endpoint leaves out.
	got, err = HTTPStats{URL: srv.URL + "/stats", PID: os.Getpid()}.Stats(t.Context())
	if err != nil || got.CPU != want.CPU || got.RSS != want.RSS {
		t.Errorf("Stats with PID = %+v, %v: the endpoint's figures must win", got, err)
	}
	if _, err := (HTTPStats{URL: srv.URL + "/nope"}).Stats(t.Context()); err == nil {
		t.Error("Stats of a 404 succeeded")
	}

	// An endpoint that leaves fields out (another server, an older build)
	// must not read as 0 sessions and 0 goroutines: "back to baseline"
	// would then be a lie.
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	defer empty.Close()
	got, err = HTTPStats{URL: empty.URL}.Stats(t.Context())
	if err != nil || got != unknownSample() {
		t.Errorf("Stats of {} = %+v, %v; want every field unknown (%+v)", got, err, unknownSample())
	}
}
