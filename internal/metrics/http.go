package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otplogin/otplogin/internal/httpserve"
)

// readyTimeout bounds one /readyz: checks that take longer count as not
// ready (a balancer's own probe timeout is often a few seconds).
const readyTimeout = 4 * time.Second

// Handler serves the operator's endpoint:
//
//   - /metrics: the metrics, in Prometheus's text format (or what the
//     scraper asks for);
//   - /healthz: 200 while the process serves HTTP at all (liveness);
//   - /readyz: 200 when every check passes, else 503 with the name of each
//     that failed (readiness: take the server out of a balancer's pool).
//
// It shows counters and health, never an address or a client; it may be
// served beyond loopback, for a Prometheus or a balancer on another host.
// It answers only requests whose Host is an IP address or localhost, not a
// name: a web page cannot use DNS rebinding to read it from an operator's
// browser.
func (m *Metrics) Handler(checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // counts its own errors and requests in flight
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	rd := &readiness{m: m, checks: checks}
	mux.HandleFunc("GET /readyz", rd.serve)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpserve.HostIsAddress(r.Host) {
			http.Error(w, "forbidden: ask by IP address or localhost, not by a host name", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// readiness runs the checks and logs when their verdict changes.
type readiness struct {
	m      *Metrics
	checks []Check

	mu     sync.Mutex
	failed map[string]bool // the checks that failed last time
}

func (rd *readiness) serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	errs := make([]error, len(rd.checks))
	var wg sync.WaitGroup
	for i, c := range rd.checks {
		wg.Go(func() { errs[i] = c.Check(ctx) })
	}
	wg.Wait()
	var failed []string
	rd.mu.Lock()
	if rd.failed == nil {
		rd.failed = map[string]bool{}
	}
	for i, c := range rd.checks {
		was := rd.failed[c.Name]
		switch err := errs[i]; {
		case err != nil && !was:
			rd.m.log.Warn("not ready", "check", c.Name, "err", err)
		case err == nil && was:
			rd.m.log.Info("ready again", "check", c.Name)
		}
		rd.failed[c.Name] = errs[i] != nil
		if errs[i] != nil {
			failed = append(failed, c.Name)
		}
	}
	rd.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) > 0 {
		// The names only: the reasons are in the operator's log.
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+strings.Join(failed, ", ")+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
