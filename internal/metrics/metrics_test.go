package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/log/v2"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/internal/metrics/metricstest"
	"github.com/otplogin/otplogin/internal/smtptest"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
)

// lockedLog is a log the code under test and the test share.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newMetrics(t *testing.T, now func() time.Time) (*Metrics, *lockedLog) {
	t.Helper()
	out := &lockedLog{}
	m := New(Options{Logger: log.NewWithOptions(out, log.Options{Formatter: log.LogfmtFormatter}), Now: now})
	t.Cleanup(m.Close)
	return m, out
}

// serveMetrics serves m's handler and returns its base URL.
func serveMetrics(t *testing.T, m *Metrics, checks ...Check) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler(checks...))
	t.Cleanup(srv.Close)
	return srv.URL
}

// codeService is a real otp.Service over the memory store, mailing through
// a real SMTP server that refuses bad@example.com, wrapped by m.
type codeService struct {
	Service
	srv *smtptest.Server
}

func newCodeService(t *testing.T, m *Metrics, clock *fakeclock.Clock, lim otp.Limits) *codeService {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(_ int, to string) error {
			if to == "bad@example.com" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	}})
	sender, err := mail.New(mail.Config{Host: srv.Host(), Port: srv.Port(), Username: "user", Password: "secret",
		From: "otp@example.org", RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	svc, err := otp.New(otp.Config{Now: clock.Now, Limits: lim}, m.Store(otp.NewMemoryStore()), m.Sender(sender))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &codeService{Service: m.Service(svc), srv: srv}
}

// code is the code of the newest message to to.
func (cs *codeService) code(t *testing.T, to string) string {
	t.Helper()
	msgs := cs.srv.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To[0] == to {
			code, err := mail.CodeFromMessage(msgs[i].Data)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
	}
	t.Fatalf("no message to %s", to)
	return ""
}

// TestServiceCounts drives a real code service through each result and
// checks every counter and histogram it moves, as scraped and parsed, and
// the log line of a limit's refusal.
func TestServiceCounts(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m, logs := newMetrics(t, clock.Now)
	cs := newCodeService(t, m, clock, otp.Limits{ClientIssues: 3})
	ctx := t.Context()
	url := serveMetrics(t, m) + "/metrics"

	before := metricstest.Scrape(t, url)
	if _, err := cs.Request(ctx, "alice@example.com", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Request(ctx, "alice@example.com", "c1"); err != nil { // inside the cooldown
		t.Fatal(err)
	}
	code := cs.code(t, "alice@example.com")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	var we *otp.WrongCodeError
	if err := cs.Verify(ctx, "alice@example.com", "c1", wrong); !errors.As(err, &we) {
		t.Fatalf("wrong code: %v", err)
	}
	if err := cs.Verify(ctx, "alice@example.com", "c1", code); err != nil {
		t.Fatal(err)
	}
	if err := cs.Verify(ctx, "alice@example.com", "c1", code); !errors.Is(err, otp.ErrNoCode) {
		t.Fatalf("used code: %v", err)
	}
	if _, err := cs.Request(ctx, "bad@example.com", "c1"); !errors.Is(err, otp.ErrDelivery) {
		t.Fatalf("refused address: %v", err)
	}
	if _, err := cs.Request(ctx, "carol@example.com", "c1"); err != nil {
		t.Fatal(err)
	}
	var le *otp.LimitError
	if _, err := cs.Request(ctx, "Dave@Example.com", "c1"); !errors.As(err, &le) || le.Kind != otp.LimitClient {
		t.Fatalf("fourth code for the client: %v, want LimitClient", err)
	}
	if _, err := cs.Request(ctx, "not an address", "c1"); !errors.Is(err, otp.ErrInvalidAddress) {
		t.Fatalf("bad address: %v", err)
	}
	if err := cs.Verify(ctx, "carol@example.com", "c1", "12"); !errors.Is(err, otp.ErrInvalidCode) {
		t.Fatalf("short code: %v", err)
	}
	after := metricstest.Scrape(t, url)

	metricstest.CheckDeltas(t, before, after, []metricstest.Moved{
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "sent"}, Want: 2},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "already_sent"}, Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "delivery_failed"}, Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "limited"}, Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "invalid_address"}, Want: 1},
		{Name: "otplogin_code_requests_total", Want: 6},
		{Name: "otplogin_limit_refusals_total", Labels: []string{"call", "request", "limit", "client"}, Want: 1},
		{Name: "otplogin_limit_refusals_total", Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "wrong_code"}, Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "verified"}, Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "no_code"}, Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "invalid_code"}, Want: 1},
		{Name: "otplogin_verifications_total", Want: 4},
		{Name: "otplogin_mail_failures_total", Labels: []string{"stage", "rcpt"}, Want: 1},
		{Name: "otplogin_mail_failures_total", Want: 1},
	}, []metricstest.Observed{
		{Name: "otplogin_mail_send_duration_seconds", Labels: []string{"result", "sent"}, Want: 2},
		{Name: "otplogin_mail_send_duration_seconds", Labels: []string{"result", "failed"}, Want: 1},
		// Refused and invalid requests never reach the store; the one
		// inside the cooldown and the refused one do.
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "issue"}, Want: 5},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "attempt"}, Want: 3},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "consume"}, Want: 1},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "discard"}, Want: 1},
	})
	if s := after.Sum("otplogin_mail_send_duration_seconds"); s <= 0 {
		t.Errorf("send durations sum to %v", s)
	}

	want := `msg="code request refused" addr=D***@example.com client=c1 limit=client retry_at=2026-12-01T13:00:00Z`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	if strings.Contains(logs.String(), "Dave") || strings.Contains(logs.String(), "dave@") {
		t.Errorf("log shows an address unmasked:\n%s", logs)
	}
}

// TestNamesAndLabels lints the metrics with Prometheus's own linter and
// checks that no label could carry an address, a client or anything a
// visitor chooses.
func TestNamesAndLabels(t *testing.T) {
	m, _ := newMetrics(t, nil)
	m.SessionStarted()
	m.SessionEnded("quit", "verified")
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	allowed := map[string]bool{"end": true, "outcome": true, "reason": true, "result": true, "call": true,
		"limit": true, "stage": true, "op": true}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "otplogin_") {
			continue
		}
		n++
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if !allowed[lp.GetName()] {
					t.Errorf("%s has label %q", f.GetName(), lp.GetName())
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("%d otplogin metrics gathered", n)
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !gathered(fams, want) {
			t.Errorf("%s is not collected", want)
		}
	}
}

func gathered(fams []*dto.MetricFamily, name string) bool {
	for _, f := range fams {
		if f.GetName() == name {
			return true
		}
	}
	return false
}

// TestSessionsAndRefusals checks the serve side: the open gauge, ends and
// outcomes, refusals, panics, and that labels stay bounded whatever a model
// or a caller says.
func TestSessionsAndRefusals(t *testing.T) {
	m, _ := newMetrics(t, nil)
	for range 3 {
		m.SessionStarted()
	}
	m.SessionEnded("quit", "verified")
	m.SessionEnded("panic", "")
	m.Refused("conn_rate")
	m.Refused("conn_rate")
	m.Refused("not a reason")
	m.Panicked()
	for i := range 2 * maxOutcomes {
		m.SessionStarted()
		m.SessionEnded("nonsense", "outcome-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	f := metricstest.Scrape(t, serveMetrics(t, m)+"/metrics")
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"otplogin_sessions_open", nil, 1},
		{"otplogin_sessions_started_total", nil, 3 + 2*maxOutcomes},
		{"otplogin_sessions_ended_total", []string{"end", "quit", "outcome", "verified"}, 1},
		{"otplogin_sessions_ended_total", []string{"end", "panic", "outcome", "none"}, 1},
		{"otplogin_sessions_ended_total", []string{"end", "other"}, 2 * maxOutcomes},
		{"otplogin_ssh_refusals_total", []string{"reason", "conn_rate"}, 2},
		{"otplogin_ssh_refusals_total", []string{"reason", "other"}, 1},
		{"otplogin_panics_recovered_total", nil, 1},
	} {
		if got := f.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := len(f["otplogin_sessions_ended_total"].GetMetric()); n > maxOutcomes+2 {
		t.Errorf("%d series of sessions_ended_total: the outcome label is not bounded", n)
	}
}

// TestEndpoint checks /healthz, /readyz as its checks change (and the log
// lines of each change), and the Host check.
func TestEndpoint(t *testing.T) {
	m, logs := newMetrics(t, nil)
	var storeErr error
	var mu sync.Mutex
	url := serveMetrics(t, m, Check{Name: "store", Check: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return storeErr
	}})
	get := func(path, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz", ""); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	mu.Lock()
	storeErr = errors.New("redis: no reply within 1s")
	mu.Unlock()
	for range 2 {
		if code, body := get("/readyz", ""); code != 503 || body != "not ready: store\n" {
			t.Errorf("/readyz with the store down: %d %q", code, body)
		}
	}
	if n := strings.Count(logs.String(), `msg="not ready" check=store err="redis: no reply within 1s"`); n != 1 {
		t.Errorf("%d not-ready lines, want one for the change:\n%s", n, logs)
	}
	mu.Lock()
	storeErr = nil
	mu.Unlock()
	if code, _ := get("/readyz", ""); code != 200 {
		t.Errorf("/readyz after the store came back: %d", code)
	}
	if !strings.Contains(logs.String(), `msg="ready again" check=store`) {
		t.Errorf("no ready-again line:\n%s", logs)
	}
	for _, host := range []string{"evil.example", "evil.example:9090", "localhost.evil.example"} {
		if code, _ := get("/metrics", host); code != http.StatusForbidden {
			t.Errorf("Host %q: %d, want 403", host, code)
		}
	}
	for _, host := range []string{"localhost:9090", "10.0.0.7:9090", "[2001:db8::7]:9090"} {
		if code, _ := get("/healthz", host); code != 200 {
			t.Errorf("Host %q: %d, want 200", host, code)
		}
	}
	if code, _ := get("/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the metrics endpoint: %d, want 404", code)
	}
}

// TestMailCheck: the relay is ready until a send cannot use it; then it is
// probed at most every ten seconds, and ready again once a probe (or a
// send) works. The probe is a stand-in: what is tested is when it runs
// (mail.TestPing tests the real one against a real server).
func TestMailCheck(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m, _ := newMetrics(t, clock.Now)
	probes := 0
	var probeErr error
	check := m.MailCheck(func(context.Context) error { probes++; return probeErr })
	ctx := t.Context()
	if err := check.Check(ctx); err != nil || probes != 0 {
		t.Fatalf("before any send: %v after %d probes, want ready without one", err, probes)
	}

	m.relay.reached(false) // a send could not connect
	probeErr = errors.New("connect: connection refused")
	for range 3 {
		if err := check.Check(ctx); err == nil {
			t.Fatal("ready with the relay down")
		}
	}
	if probes != 1 {
		t.Fatalf("%d probes within ten seconds, want 1", probes)
	}
	clock.Advance(relayProbeEvery)
	probeErr = nil
	if err := check.Check(ctx); err != nil || probes != 2 {
		t.Fatalf("after ten seconds: %v after %d probes, want ready after a second probe", err, probes)
	}
	// It fails again right away: probed at once, not ten seconds later.
	m.relay.reached(false)
	probeErr = errors.New("auth: 535 bad credentials")
	if err := check.Check(ctx); err == nil || probes != 3 {
		t.Fatalf("%v after %d probes, want a failed third probe", err, probes)
	}
	m.relay.reached(true) // a send worked
	if err := check.Check(ctx); err != nil || probes != 3 {
		t.Fatalf("after a send worked: %v after %d probes", err, probes)
	}
}

// TestSummarize checks the minute's line: what moved since the last one,
// and nothing for a quiet minute. It calls the summary's step directly: a
// tick sent to Summarize's goroutine would race with the counts it reads.
func TestSummarize(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m, logs := newMetrics(t, clock.Now)
	cs := newCodeService(t, m, clock, otp.Limits{})
	m.SessionStarted() // before the summary starts: not in its first line
	s := m.startSummary()

	m.SessionStarted()
	m.SessionStarted()
	if _, err := cs.Request(t.Context(), "alice@example.com", "c1"); err != nil {
		t.Fatal(err)
	}
	_ = cs.Verify(t.Context(), "alice@example.com", "c1", "12345x")
	code := cs.code(t, "alice@example.com")
	if err := cs.Verify(t.Context(), "alice@example.com", "c1", code); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Request(t.Context(), "bad@example.com", "c1"); err == nil {
		t.Fatal("bad@ was sent to")
	}
	m.Refused("conn_rate")
	s.logSince()
	s.logSince() // a quiet minute
	want := `msg="last minute" sessions=2 codes_requested=2 codes_sent=1 verified=1 wrong_codes=0 refusals=1 failures=1`
	if got := strings.Count(logs.String(), `msg="last minute"`); got != 1 || !strings.Contains(logs.String(), want) {
		t.Errorf("want one line %q, got:\n%s", want, logs)
	}
}

// TestSummarizeTicks checks that Summarize logs on its ticks and returns
// when its context ends. A send on the unbuffered tick is received only
// once the previous tick's line is written, so whichever tick first sees
// the session, exactly one line says so.
func TestSummarizeTicks(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	m, logs := newMetrics(t, clock.Now)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Summarize(ctx, tick) }()
	tick <- clock.Now() // received: Summarize has read where the counts start
	m.SessionStarted()
	tick <- clock.Now()
	tick <- clock.Now()
	cancel()
	<-done
	want := `msg="last minute" sessions=1 codes_requested=0`
	if got := strings.Count(logs.String(), `msg="last minute"`); got != 1 || !strings.Contains(logs.String(), want) {
		t.Errorf("want one line with %q, got:\n%s", want, logs)
	}
}
