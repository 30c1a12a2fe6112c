package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/ui"
)

// helperEnv makes the test binary run a login server instead of tests, so
// that a benchmark can measure the server's memory and CPU apart from its
// clients'.
const helperEnv = "OTPLOGIN_SERVE_BENCH_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := runHelperServer(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelperServer serves the real login with limits out of the way, prints
// "ssh=ADDR debug=ADDR" and runs until its stdin closes.
func runHelperServer() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadByte(); cancel() }()
	tmp, err := os.MkdirTemp("", "otplogin-serve-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dev, err := devserver.Start(ctx, tmp+"/outbox")
	if err != nil {
		return err
	}
	defer dev.Close()
	sender, err := mail.New(dev.SenderConfig())
	if err != nil {
		return err
	}
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), sender)
	if err != nil {
		return err
	}
	defer svc.Close()
	fps, _ := strconv.Atoi(os.Getenv("OTPLOGIN_BENCH_FPS"))
	screens := ui.NewCache()
	srv, err := New(Config{
		Listen:               "127.0.0.1:0",
		HostKeyPath:          tmp + "/host_key",
		MaxSessions:          5000,
		MaxSessionsPerClient: 5000,
		ConnRate:             rate.Inf,
		FPS:                  fps,
		Logger:               log.NewWithOptions(os.Stderr, log.Options{Level: log.WarnLevel}),
		NewModel: func(s Session) tea.Model {
			if os.Getenv("OTPLOGIN_BENCH_MODEL") == "test" { // the floor: serve, SSH and bubbletea
				return testModel{client: "Email"}
			}
			return ui.New(ui.Options{Service: svc, Client: s.Client, Remote: true, Context: s.Context(), Logger: s.Logger, Cache: screens})
		},
	})
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.DebugHandler(), ReadHeaderTimeout: time.Second}
	hl, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = hs.Serve(hl) }()
	defer hs.Close()
	sl, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ssh=%s debug=%s\n", sl.Addr(), hl.Addr())
	return srv.Serve(ctx, sl)
}

// BenchmarkIdleSessions is the package's own idle harness; `otplogin load
// --hold` measures the same cost per idle session from outside, and is what
// docs/PERFORMANCE.md uses. This one stays for what load does not do: the
// echo latency of a key, and the floor of serve, SSH and bubbletea without
// the ui (OTPLOGIN_BENCH_MODEL=test).
//
// It opens OTPLOGIN_BENCH_SESSIONS (100) concurrent
// sessions of the real login against a server in another process, waits for
// each first frame, and reports the server's cost per idle session: RSS,
// goroutines and CPU over a quiet interval, plus connect-to-first-frame
// latency and, after the quiet interval, the echo latency of a key typed in
// a few of the sessions. Run it with -benchtime=1x. OTPLOGIN_BENCH_FPS sets
// Config.FPS; OTPLOGIN_BENCH_MODEL=test swaps the ui for the tiny test
// model, which shows the floor that serve, SSH and bubbletea cost on their
// own. OTPLOGIN_BENCH_HEAP, _GOROUTINES and _CPU name files for the server's
// heap profile (plus its text form, with runtime.MemStats, in NAME.txt),
// goroutine dump and CPU profile of the quiet interval.
func BenchmarkIdleSessions(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("OTPLOGIN_BENCH_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	var sshAddr, debugAddr string
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, err2 := fmt.Sscanf(line, "ssh=%s debug=%s", &sshAddr, &debugAddr); err != nil || err2 != nil {
		b.Fatalf("helper said %q: %v %v", line, err, err2)
	}
	stats := func() Stats {
		resp, err := http.Get("http://" + debugAddr + "/stats")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var s Stats
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			b.Fatal(err)
		}
		return s
	}
	// open dials, starts a shell and returns the time to the first frame.
	open := func() benchSession {
		start := time.Now()
		c, err := dialErr(sshAddr)
		if err != nil {
			b.Fatal(err)
		}
		sess, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		out := &safeBuffer{}
		sess.Stdout = out
		// An open stdin, as a real client's: with none, the client sends EOF
		// at once and the server's input reader ends, which is not idle.
		inR, inW := io.Pipe()
		sess.Stdin = inR
		if err := sess.RequestPty("xterm-256color", 24, 80, nil); err != nil {
			b.Fatal(err)
		}
		if err := sess.Shell(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), "Email") {
			if time.Now().After(deadline) {
				b.Fatal("no first frame")
			}
			time.Sleep(time.Millisecond)
		}
		return benchSession{
			firstFrame: time.Since(start),
			in:         inW,
			out:        out,
			close:      func() { _ = inW.Close(); _ = sess.Close(); _ = c.Close() },
		}
	}

	open().close() // load code and start process-wide helpers
	time.Sleep(time.Second)
	base := stats()

	for b.Loop() {
		var (
			mu       sync.Mutex
			sessions []benchSession
			wg       sync.WaitGroup
		)
		for range n {
			wg.Go(func() {
				s := open()
				mu.Lock()
				sessions = append(sessions, s)
				mu.Unlock()
			})
		}
		wg.Wait()
		time.Sleep(3 * time.Second) // let the connection burst settle
		idle := stats()
		if path := os.Getenv("OTPLOGIN_BENCH_HEAP"); path != "" {
			saveProfile(b, "http://"+debugAddr+"/debug/pprof/heap?gc=1", path)
			// The text form ends with runtime.MemStats: stacks, heap in use
			// and what the heap holds but does not use.
			saveProfile(b, "http://"+debugAddr+"/debug/pprof/heap?debug=1", path+".txt")
		}
		if path := os.Getenv("OTPLOGIN_BENCH_GOROUTINES"); path != "" {
			saveProfile(b, "http://"+debugAddr+"/debug/pprof/goroutine?debug=1", path)
		}
		// The quiet interval starts after the profiles: heap?gc=1 forces a
		// collection, whose CPU is not idle cost.
		quietStart := stats()
		const quiet = 10 * time.Second
		if path := os.Getenv("OTPLOGIN_BENCH_CPU"); path != "" {
			saveProfile(b, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, int(quiet.Seconds())), path)
		} else {
			time.Sleep(quiet)
		}
		after := stats()

		// Type a key in a few sessions, one at a time, while the rest idle:
		// the time until its echo is what a user feels.
		var echo []time.Duration
		for _, s := range sessions[:min(len(sessions), 20)] {
			mark := len(s.out.String())
			start := time.Now()
			if _, err := io.WriteString(s.in, "x"); err != nil {
				b.Fatal(err)
			}
			deadline := start.Add(10 * time.Second)
			for !strings.Contains(s.out.String()[mark:], "x") {
				if time.Now().After(deadline) {
					b.Fatal("no echo")
				}
				time.Sleep(100 * time.Microsecond)
			}
			echo = append(echo, time.Since(start))
		}

		latency := make([]time.Duration, 0, len(sessions))
		for _, s := range sessions {
			latency = append(latency, s.firstFrame)
		}
		pct := func(ds []time.Duration, p float64) float64 {
			slices.Sort(ds)
			return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(float64(idle.RSSBytes-base.RSSBytes)/float64(n)/1024, "KiB-RSS/session")
		b.ReportMetric(float64(idle.Goroutines-base.Goroutines)/float64(n), "goroutines/session")
		b.ReportMetric(pct(latency, 0.5), "ms-first-frame-p50")
		b.ReportMetric(pct(latency, 0.95), "ms-first-frame-p95")
		b.ReportMetric(pct(latency, 1), "ms-first-frame-max")
		b.ReportMetric(pct(echo, 0.5), "ms-key-echo-p50")
		b.ReportMetric(pct(echo, 1), "ms-key-echo-max")
		b.ReportMetric(100*float64(after.CPUNanos-quietStart.CPUNanos)/float64(quiet), "%CPU-idle")
		b.Logf("sessions=%d base=%+v idle=%+v", n, base, idle)
		for _, s := range sessions {
			s.close()
		}
	}
}

// benchSession is one client session of BenchmarkIdleSessions.
type benchSession struct {
	firstFrame time.Duration
	in         io.Writer // the session's stdin
	out        *safeBuffer
	close      func()
}

// saveProfile fetches a pprof profile from url into path.
func saveProfile(b *testing.B, url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
}
