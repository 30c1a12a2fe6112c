package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"

	"github.com/otplogin/otplogin/internal/httpserve"
	"github.com/otplogin/otplogin/internal/proccpu"
)

// Stats is a snapshot of the server's load, for the load tool and operators.
type Stats struct {
	Sessions      int   `json:"sessions"`        // live sessions
	Conns         int   `json:"conns"`           // live connections, sessions included
	Clients       int   `json:"clients"`         // clients and IPv6 prefixes the limiter remembers
	SessionsTotal int64 `json:"sessions_total"`  // sessions started since New
	Refused       int64 `json:"refused"`         // connections refused before the handshake
	Turned        int64 `json:"turned_away"`     // sessions refused: no PTY, a cap, too many variables, shutting down
	Panics        int64 `json:"panics"`          // panics recovered; each ended one connection
	ReadWaits     int64 `json:"read_waits"`      // reads that waited for the shared ReadRate
	InputRateEnds int64 `json:"input_rate_ends"` // sessions closed because InputRate was spent
	Goroutines    int   `json:"goroutines"`      // in the whole process
	RSSBytes      int64 `json:"rss_bytes"`       // resident set of the process; 0 if unknown
	CPUNanos      int64 `json:"cpu_ns"`          // CPU time the process has used; 0 if unknown
}

// Stats returns the current Stats.
func (s *Server) Stats() Stats {
	conns, sessions, clients := s.lim.counts()
	return Stats{
		Sessions:      sessions,
		Conns:         conns,
		Clients:       clients,
		SessionsTotal: s.sessionsTotal.Load(),
		Refused:       s.refused.Load(),
		Turned:        s.turned.Load(),
		Panics:        s.panics.Load(),
		ReadWaits:     s.reads.waits.Load(),
		InputRateEnds: s.input.refused.Load(),
		Goroutines:    runtime.NumGoroutine(),
		RSSBytes:      rss(),
		CPUNanos:      int64(proccpu.Self()),
	}
}

// rss reads the resident set size from /proc/self/statm (Linux only).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// DebugHandler serves Stats as JSON on /stats and the runtime profiles on
// /debug/pprof/. It reveals internals: serve it on loopback only (ServeDebug).
// It answers only requests whose Host is a loopback name or address: a web
// page the operator opens could otherwise point its own host name at
// 127.0.0.1 (DNS rebinding) and read the endpoint from the browser.
func (s *Server) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	// No /debug/pprof/cmdline: flags may hold secrets such as an SMTP URL.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return loopbackHostOnly(mux)
}

// loopbackHostOnly refuses requests whose Host header is not "localhost" or
// a loopback IP address, with or without a port.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpserve.HostIsLoopback(r.Host) {
			http.Error(w, "forbidden: the debug endpoint answers only to a loopback host name", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeDebug serves DebugHandler on addr until ctx is cancelled. addr must be
// a loopback IP address and port (e.g. 127.0.0.1:6060): the endpoint has no
// authentication.
func (s *Server) ServeDebug(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("debug address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("debug address %q: must be a loopback IP address", addr)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // cancelled before it started: nothing to stop
		}
		return fmt.Errorf("debug address: %w", err)
	}
	s.log.Info("debug endpoint", "listen", l.Addr().String()) // the port, when addr asked for any
	if err := httpserve.Serve(ctx, l, s.DebugHandler()); err != nil {
		return fmt.Errorf("debug endpoint: %w", err)
	}
	return nil
}
