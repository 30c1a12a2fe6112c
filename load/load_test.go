package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	seq := make([]int, 100)
	for i := range seq {
		seq[i] = 100 - i // reversed: Percentiles must sort
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{N: 1, P50: 7 * time.Millisecond, P90: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"two", ms(9, 1), Latency{N: 2, P50: 1 * time.Millisecond, P90: 9 * time.Millisecond, P99: 9 * time.Millisecond, Max: 9 * time.Millisecond}},
		{"hundred", ms(seq...), Latency{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentiles(tc.in); got != tc.want {
				t.Errorf("Percentiles = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr, want, err string
	}{
		{addr: "127.0.0.1:23234", want: "127.0.0.1:23234"},
		{addr: "127.9.9.9:22", want: "127.9.9.9:22"},
		{addr: "[::1]:22", want: "[::1]:22"},
		{addr: "localhost:22", want: ":22"}, // 127.0.0.1 or ::1
		{addr: "10.1.2.3:22", err: "refusing non-loopback"},
		{addr: "[2001:db8::1]:22", err: "refusing non-loopback"},
		{addr: "0.0.0.0:22", err: "refusing non-loopback"},
		{addr: ":22", err: "no host"},
		{addr: "127.0.0.1", err: "missing port"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := loopback(t.Context(), tc.addr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("loopback(%q) = %q, %v; want error with %q", tc.addr, got, err, tc.err)
				}
				return
			}
			if err != nil || !strings.HasSuffix(got, tc.want) {
				t.Fatalf("loopback(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
			}
			host, _, _ := net.SplitHostPort(got)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Errorf("loopback(%q) = %q: not a loopback ip", tc.addr, got)
			}
		})
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	codes := NewOutbox("unused")
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"remote target", Config{Addr: "192.0.2.1:22", Codes: codes}, "non-loopback"},
		{"no code reader", Config{Addr: "127.0.0.1:22"}, "code reader"},
		{"too many sessions", Config{Addr: "127.0.0.1:22", Codes: codes, Sessions: MaxSessions + 1}, "sessions must be"},
		{"negative concurrency", Config{Addr: "127.0.0.1:22", Codes: codes, Concurrency: -1}, "concurrency must be"},
		{"hold past timeout", Config{Addr: "127.0.0.1:22", Hold: time.Minute, Timeout: time.Second}, "shorter than the timeout"},
		{"negative timeout", Config{Addr: "127.0.0.1:22", Codes: codes, Timeout: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Run = %v, want error with %q", err, tc.err)
			}
		})
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{phaseErr("dial", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), "dial: dial: connection refused"},
		{phaseErr("code screen", context.DeadlineExceeded), "code screen: timeout"},
		{&SessionError{Phase: "verified", Err: io.EOF, Screen: "Wrong code"}, "verified: connection closed"},
		{phaseErr("read code", fmt.Errorf("outbox: %w", context.Canceled)), "read code: canceled"},
		{phaseErr("email screen", errScreenTooLong), "email screen: screen never showed the expected text"},
		{errors.New("odd"), "session: odd"},
		{phaseErr("handshake", errors.New("ssh: handshake failed: a very long explanation that differs for every single session")), "handshake: ssh"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestStatusKiB(t *testing.T) {
	status := []byte("Name:\tserve\nVmPeak:\t  99 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n")
	if got, err := statusKiB(status, "VmRSS:"); err != nil || got != 20<<20 {
		t.Errorf("statusKiB = %d, %v; want %d", got, err, 20<<20)
	}
	if _, err := statusKiB(status, "VmSwap:"); err == nil {
		t.Error("statusKiB found a missing key")
	}
}

func TestStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 150 and 50 ticks; the name has a
	// space and a parenthesis to trip naive splitting.
	stat := []byte("4242 (my (serve) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 7 0 1000 0 0")
	if got, want := statCPU(stat), 2*time.Second; got != want {
		t.Errorf("statCPU = %v, want %v", got, want)
	}
	if got := statCPU([]byte("garbage")); got != -1 {
		t.Errorf("statCPU(garbage) = %v, want -1", got)
	}
}

func TestProcessSelf(t *testing.T) {
	s, err := Process{Sessions: func() int { return 3 }}.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Goroutines <= 0 || s.CPU <= 0 || s.Sessions != 3 {
		t.Errorf("Process{}.Stats = %+v, want every field known", s)
	}
}

func TestReportWrite(t *testing.T) {
	r := Report{
		Target: "127.0.0.1:23234", Sessions: 3, Concurrency: 2,
		Elapsed: 2 * time.Second, ClientCPU: 500 * time.Millisecond,
		Before:  Sample{RSS: 10 << 20, Goroutines: 8, Sessions: 0, CPU: time.Second},
		Peak:    Sample{RSS: 30 << 20, Goroutines: 40, Sessions: 2, CPU: 2 * time.Second},
		After:   Sample{RSS: 12 << 20, Goroutines: 8, Sessions: 0, CPU: 2 * time.Second},
		Settled: true,
	}
	r.summarize([]result{
		{firstFrame: 4 * time.Millisecond, login: 40 * time.Millisecond},
		{firstFrame: 6 * time.Millisecond, login: 60 * time.Millisecond},
		{err: &SessionError{Phase: "code screen", Err: context.DeadlineExceeded, Screen: "Too many codes"}},
	})
	out := writeReport(t, r)
	for _, want := range []string{
		"2 ok, 1 failed",
		"p50 4.0ms", "p50 40.0ms", "max 60.0ms",
		"1.0 logins/s (2 in 2s)",
		"10.0 MiB", "30.0 MiB", "12.0 MiB",
		"back to baseline yes",
		"50.0% of one core",
		"per login 500ms",
		"load generator CPU 25.0% of one core", "per login 250ms",
		"1 × code screen: timeout",
		`Too many codes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestIdleFigures(t *testing.T) {
	r := Report{
		Hold: 10 * time.Second, HoldCPU: 100 * time.Millisecond, OK: 100,
		Before: Sample{RSS: 10 << 20}, Peak: Sample{RSS: 35 << 20},
	}
	if got, want := r.IdleRSSPerSession(), int64(256<<10); got != want {
		t.Errorf("IdleRSSPerSession = %d, want %d", got, want)
	}
	if got := r.CPUShare(); got != 0.01 {
		t.Errorf("CPUShare = %v, want 0.01", got)
	}
	r.HoldCPU = -1
	if got := r.CPUShare(); got != -1 {
		t.Errorf("CPUShare with unknown CPU = %v, want -1", got)
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct{ done, total, full int }{{0, 10, 0}, {5, 10, 20}, {10, 10, 40}, {0, 0, 0}} {
		b := bar(tc.done, tc.total)
		if got := strings.Count(b, "█"); got != tc.full || strings.Count(b, "░") != barWidth-tc.full {
			t.Errorf("bar(%d, %d) = %q", tc.done, tc.total, b)
		}
	}
}

// script replays server samples, the last one for ever. It stands in for a
// real server because a real one's teardown cannot be stopped at a chosen
// goroutine count.
type script struct {
	mu      sync.Mutex
	samples []Sample
	calls   int
}

func (s *script) Stats(context.Context) (Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	x := s.samples[0]
	if len(s.samples) > 1 {
		s.samples = s.samples[1:]
	}
	return x, nil
}

// counting is a server whose goroutine count never stops rising.
type counting struct{ n atomic.Int64 }

func (c *counting) Stats(context.Context) (Sample, error) {
	return Sample{RSS: -1, Goroutines: int(c.n.Add(1)), Sessions: 0, CPU: -1}, nil
}

func TestBaselineWaitsForQuiet(t *testing.T) {
	g := func(goroutines, sessions int) Sample {
		return Sample{RSS: -1, Goroutines: goroutines, Sessions: sessions, CPU: -1}
	}
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    Sample
	}{
		// The warm-up session is still being torn down: 19, 15, 12, then 10.
		{"teardown", []Sample{g(19, 1), g(15, 1), g(12, 0), g(10, 0), g(10, 0)}, g(10, 0)},
		{"steady but a session open", []Sample{g(12, 1), g(12, 1), g(12, 1), g(10, 0), g(10, 0)}, g(10, 0)},
		{"quiet at once", []Sample{g(10, 0)}, g(10, 0)},
		{"goroutines unknown", []Sample{g(-1, 1), g(-1, 0)}, g(-1, 0)},
		{"sessions unknown", []Sample{g(11, -1), g(10, -1), g(10, -1)}, g(10, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := &script{samples: tc.samples}
			r := &runner{cfg: Config{Stats: sc, Settle: 10 * time.Second}}
			if got := r.baseline(t.Context()); got != tc.want {
				t.Errorf("baseline = %+v, want %+v (after %d samples)", got, tc.want, sc.calls)
			}
		})
	}

	t.Run("never quiet", func(t *testing.T) {
		c := &counting{}
		r := &runner{cfg: Config{Stats: c, Settle: 200 * time.Millisecond}}
		got := r.baseline(t.Context())
		if n := int(c.n.Load()); got.Goroutines != n || n < 2 {
			t.Errorf("baseline = %+v after %d samples, want the last of at least 2", got, n)
		}
	})
	t.Run("no stats", func(t *testing.T) {
		r := &runner{cfg: Config{Settle: 10 * time.Second}}
		if got := r.baseline(t.Context()); got.Known() {
			t.Errorf("baseline = %+v, want unknown", got)
		}
	})
}
