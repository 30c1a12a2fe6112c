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
			return ui.New(ui.Options{Service: svc, Client: s.Client, Remote: true, Context: s.Context(), Logger: s.Logger})
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

// BenchmarkIdleSessions opens OTPLOGIN_BENCH_SESSIONS (100) concurrent
// sessions of the real login against a server in another process, waits for
// each first frame, and reports the server's cost per idle session: RSS,
// goroutines and CPU over a quiet interval, plus connect-to-first-frame
// latency. Run it with -benchtime=1x. OTPLOGIN_BENCH_FPS sets Config.FPS;
// OTPLOGIN_BENCH_MODEL=test swaps the ui for the tiny test model, which
// shows the floor that serve, SSH and bubbletea cost on their own.
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
	open := func() (time.Duration, func()) {
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
		return time.Since(start), func() { _ = sess.Close(); _ = c.Close() }
	}

	_, closeWarm := open() // load code and start process-wide helpers
	closeWarm()
	time.Sleep(time.Second)
	base := stats()

	for b.Loop() {
		var (
			mu      sync.Mutex
			latency []time.Duration
			closers []func()
			wg      sync.WaitGroup
		)
		for range n {
			wg.Go(func() {
				d, c := open()
				mu.Lock()
				latency, closers = append(latency, d), append(closers, c)
				mu.Unlock()
			})
		}
		wg.Wait()
		time.Sleep(3 * time.Second) // let the connection burst settle
		idle := stats()
		if path := os.Getenv("OTPLOGIN_BENCH_HEAP"); path != "" {
			saveProfile(b, "http://"+debugAddr+"/debug/pprof/heap?gc=1", path)
		}
		const quiet = 10 * time.Second
		if path := os.Getenv("OTPLOGIN_BENCH_CPU"); path != "" {
			saveProfile(b, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, int(quiet.Seconds())), path)
		} else {
			time.Sleep(quiet)
		}
		after := stats()

		slices.Sort(latency)
		pct := func(p float64) float64 {
			return float64(latency[int(p*float64(len(latency)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(float64(idle.RSSBytes-base.RSSBytes)/float64(n)/1024, "KiB-RSS/session")
		b.ReportMetric(float64(idle.Goroutines-base.Goroutines)/float64(n), "goroutines/session")
		b.ReportMetric(pct(0.5), "ms-first-frame-p50")
		b.ReportMetric(pct(0.95), "ms-first-frame-p95")
		b.ReportMetric(pct(1), "ms-first-frame-max")
		b.ReportMetric(100*float64(after.CPUNanos-idle.CPUNanos)/float64(quiet), "%CPU-idle")
		b.Logf("sessions=%d base=%+v idle=%+v", n, base, idle)
		for _, c := range closers {
			c()
		}
	}
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
