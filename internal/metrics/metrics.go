// Package metrics is what an operator's tools read from otplogin serve:
// Prometheus metrics of sessions, codes, mail and the store (each Metrics
// has a registry of its own, with the Go and process collectors), the
// health and readiness endpoints a load balancer or a container runtime
// asks, and a line a minute in the log that sums up the last minute.
//
// Metrics counts through an Observer for serve and wrappers around the otp
// Service, Store and Sender, so that serve, otp and mail know nothing of
// Prometheus. No label carries an address, a client or anything a visitor
// chooses: every label value comes from a fixed set, "other" standing for
// anything outside it.
package metrics

import (
	"io"
	"strings"
	"sync"
	"time"

	"charm.land/log/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/otplogin/otplogin/internal/lograte"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
)

// Options configure a Metrics. The zero value means the defaults.
type Options struct {
	// Logger gets the refusals of the otp limits (a few a second per
	// limit), the minute's summary, and changes of readiness (a logger
	// that discards).
	Logger *log.Logger
	// Now is the clock for how many refusals a second are logged and how
	// often the relay is probed after a failure (time.Now).
	Now func() time.Time
}

// Metrics holds the server's metrics. Make one per server with New; its
// methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	log      *log.Logger
	now      func() time.Time
	refusals *lograte.Limiter // how many otp refusals a second are logged

	sessionsOpen    prometheus.Gauge
	sessionsStarted prometheus.Counter
	sessionsEnded   *prometheus.CounterVec // end, outcome
	outcomes        words                  // the outcome label's values
	sshRefusals     labelled               // reason
	panics          prometheus.Counter

	requests      labelled // result
	verifications labelled // result
	limitRefusals map[string]labelled
	mailSent      prometheus.Observer // send durations, accepted by the relay
	mailFailed    prometheus.Observer // and failed
	mailFailures  labelled            // stage
	storeDuration storeOps

	relay relayState // for MailCheck
}

// The values of the result labels.
const (
	resultSent           = "sent"
	resultMaybeSent      = "maybe_sent"
	resultAlreadySent    = "already_sent"
	resultLimited        = "limited"
	resultDeliveryFailed = "delivery_failed"
	resultInvalidAddress = "invalid_address"
	resultInvalidCode    = "invalid_code"
	resultUnavailable    = "unavailable"
	resultVerified       = "verified"
	resultWrongCode      = "wrong_code"
	resultTooMany        = "too_many_attempts"
	resultExpired        = "expired"
	resultNoCode         = "no_code"
	resultFailed         = "failed"
	other                = "other"
)

// Buckets of the latency histograms. A send takes from milliseconds (a
// relay on the same host) to the send timeout (20s by default); a store call
// from microseconds (memory) to its timeout (1s for Redis).
var (
	mailBuckets  = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40}
	storeBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// New makes the metrics of one server, in a registry of its own with the Go
// and process collectors.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: opts.Logger, now: opts.Now}
	if m.log == nil {
		m.log = log.New(io.Discard)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.refusals = lograte.New(lograte.Options{Now: m.now}, func(limit string, n int) {
		m.log.Info("refusals not logged", "limit", limit, "suppressed", n)
	})
	f := factory{m.reg}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	m.sessionsOpen = f.gauge("otplogin_sessions_open", "SSH sessions running a login now.")
	m.sessionsStarted = f.counter("otplogin_sessions_started_total", "SSH sessions that passed the caps and started a login.")
	m.sessionsEnded = f.counterVec("otplogin_sessions_ended_total",
		"SSH sessions ended, by how (end: quit, disconnected, shutdown, input_limit, input_rate, time_limit, error, panic) and where the login was (outcome: verified, cancelled, wrong-code, ...).",
		"end", "outcome")
	m.outcomes = words{max: maxOutcomes}
	m.sshRefusals = f.labelled("otplogin_ssh_refusals_total",
		"SSH connections and sessions turned away, by reason: the limit that refused, or no_pty, shutting_down.",
		"reason", serve.RefusedConnRate, serve.RefusedClientConns, serve.RefusedConns, serve.RefusedClientSessions,
		serve.RefusedSessions, serve.RefusedEnv, serve.RefusedNoPTY, serve.RefusedShuttingDown)
	m.panics = f.counter("otplogin_panics_recovered_total", "Panics recovered; each ended one SSH connection.")

	m.requests = f.labelled("otplogin_code_requests_total",
		"Code requests, by result: sent, maybe_sent (the relay's answer was lost; the code was kept), already_sent (a live code is pending), limited, delivery_failed, invalid_address, unavailable (the store failed).",
		"result", resultSent, resultMaybeSent, resultAlreadySent, resultLimited, resultDeliveryFailed, resultInvalidAddress, resultUnavailable)
	m.verifications = f.labelled("otplogin_verifications_total",
		"Codes checked, by result: verified, wrong_code, too_many_attempts (the code was dead), expired, no_code, limited, invalid_code, invalid_address, unavailable.",
		"result", resultVerified, resultWrongCode, resultTooMany, resultExpired, resultNoCode, resultLimited,
		resultInvalidCode, resultInvalidAddress, resultUnavailable)
	refusals := f.counterVec("otplogin_limit_refusals_total",
		"Code requests (call=request) and checks (call=verify) refused by an otp limit: resend_cooldown, address, client, failures, busy, global_rate.",
		"call", "limit")
	// A check can only be refused by the failure budget.
	m.limitRefusals = map[string]labelled{
		"request": resolve(refusals.MustCurryWith(prometheus.Labels{"call": "request"}), limitWords...),
		"verify":  resolve(refusals.MustCurryWith(prometheus.Labels{"call": "verify"}), limitWord(otp.LimitFailures)),
	}
	mailDuration := f.histogramVec("otplogin_mail_send_duration_seconds",
		"Time to deliver one code email to the relay, retries included, by result: sent or failed.",
		mailBuckets, "result")
	m.mailSent, m.mailFailed = mailDuration.WithLabelValues(resultSent), mailDuration.WithLabelValues(resultFailed)
	m.mailFailures = f.labelled("otplogin_mail_failures_total",
		"Code emails that failed, by the SMTP stage that failed (a data-end failure may still have been delivered).",
		"stage", stageWords...)
	storeDuration := f.histogramVec("otplogin_store_duration_seconds",
		"Time of one call to the code store, by op: issue, attempt, consume, discard.", storeBuckets, "op")
	m.storeDuration = storeOps{
		issue:   storeDuration.WithLabelValues("issue"),
		attempt: storeDuration.WithLabelValues("attempt"),
		consume: storeDuration.WithLabelValues("consume"),
		discard: storeDuration.WithLabelValues("discard"),
	}
	return m
}

// Registry is the registry the metrics are in, for tests and for a program
// that adds its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Close reports the refusals not yet logged and stops the timer behind
// them, so that nothing outlives the log.
func (m *Metrics) Close() { m.refusals.Close() }

// storeOps are the store's latency histograms, one per op.
type storeOps struct{ issue, attempt, consume, discard prometheus.Observer }

// limitWords are the limit label's values, in otp.LimitKind order.
var limitWords = []string{"resend_cooldown", "address", "client", "failures", "busy", "global_rate"}

func limitWord(k otp.LimitKind) string {
	switch k {
	case otp.LimitResend:
		return limitWords[0]
	case otp.LimitAddress:
		return limitWords[1]
	case otp.LimitClient:
		return limitWords[2]
	case otp.LimitFailures:
		return limitWords[3]
	case otp.LimitBusy:
		return limitWords[4]
	case otp.LimitGlobalRate:
		return limitWords[5]
	}
	return other
}

// stageWords are the stage label's values: mail's stages.
var stageWords = []string{
	string(mail.StageCompose), string(mail.StageConnect), string(mail.StageHello), string(mail.StageTLS),
	string(mail.StageAuth), string(mail.StageMail), string(mail.StageRcpt), string(mail.StageData), string(mail.StageDataEnd),
}

// labelled is one counter per value of a metric's one label, resolved at
// New so that counting is one atomic add.
type labelled map[string]prometheus.Counter

// inc counts one for value, or for "other" when value is not one of the
// label's.
func (l labelled) inc(value string) {
	if c, ok := l[value]; ok {
		c.Inc()
		return
	}
	l[other].Inc()
}

func resolve(vec *prometheus.CounterVec, values ...string) labelled {
	l := labelled{}
	for _, v := range append(values, other) {
		l[v] = vec.WithLabelValues(v)
	}
	return l
}

// maxOutcomes bounds the outcome label: the ui's outcome words are a dozen.
const maxOutcomes = 32

// words keeps the label values seen, up to max; a value beyond them, or
// not a plain lower-case word, is "other", and an empty one "none". The
// outcome words come from the program's own model, never from a visitor,
// but the bound keeps the label bounded whatever a model says.
type words struct {
	max  int
	mu   sync.Mutex
	seen map[string]bool
}

func (w *words) label(v string) string {
	switch {
	case v == "":
		return "none"
	case len(v) > 32 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "":
		return other
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[v] {
		return v
	}
	if len(w.seen) >= w.max {
		return other
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[v] = true
	return v
}

// factory makes metrics and registers them.
type factory struct{ reg prometheus.Registerer }

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) labelled(name, help, label string, values ...string) labelled {
	return resolve(f.counterVec(name, help, label), values...)
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// The serve.Observer side.

var _ serve.Observer = (*Metrics)(nil)

// Refused counts a connection or session turned away.
func (m *Metrics) Refused(reason string) { m.sshRefusals.inc(reason) }

// SessionStarted counts a session that started its login.
func (m *Metrics) SessionStarted() {
	m.sessionsStarted.Inc()
	m.sessionsOpen.Inc()
}

// SessionEnded counts a session that ended.
func (m *Metrics) SessionEnded(end, outcome string) {
	m.sessionsOpen.Dec()
	m.sessionsEnded.WithLabelValues(endWord(end), m.outcomes.label(outcome)).Inc()
}

// Panicked counts a recovered panic.
func (m *Metrics) Panicked() { m.panics.Inc() }

// endWord bounds the end label to serve's words.
func endWord(end string) string {
	switch end {
	case "quit", "disconnected", "shutdown", "input_limit", "input_rate", "time_limit", "error", "panic":
		return end
	}
	return other
}
