package load

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestMeasure runs a full-size run when LOAD_MEASURE is "idle" or "login",
// and writes pprof profiles to LOAD_PROFILE_DIR if set. By default the stack
// runs in-process, so the figures include the load client; with
// LOAD_MEASURE=serve in one process and LOAD_ADDR & co. (which it prints) in
// another, they are the server's alone. See docs/PERFORMANCE.md.
//
//	LOAD_MEASURE=idle LOAD_SESSIONS=1000 LOAD_HOLD=20s go test -run TestMeasure -v ./load/
//	LOAD_MEASURE=login LOAD_SESSIONS=2000 LOAD_CONCURRENCY=32 go test -run TestMeasure -v ./load/
//
// Knobs for the in-process stack: LOAD_FPS (serve's renderer frame rate),
// LOAD_SMTP_IDLE (pooled SMTP connections; -1 none).
func TestMeasure(t *testing.T) {
	mode := os.Getenv("LOAD_MEASURE")
	if mode == "" {
		t.Skip("set LOAD_MEASURE=idle or LOAD_MEASURE=login")
	}
	n := envInt(t, "LOAD_SESSIONS", 100)
	conc := envInt(t, "LOAD_CONCURRENCY", 10)
	o := stackOptions{
		fps:     envInt(t, "LOAD_FPS", 0),
		maxIdle: envInt(t, "LOAD_SMTP_IDLE", 0),
	}
	dir := os.Getenv("LOAD_PROFILE_DIR")
	if mode == "serve" {
		serveForLoad(t, n, o)
		return
	}

	cfg := Config{
		Sessions: n, Concurrency: conc, Timeout: 10 * time.Minute, Progress: os.Stderr,
		Settle: envDuration(t, "LOAD_SETTLE", 0),
	}
	if addr := os.Getenv("LOAD_ADDR"); addr != "" {
		// The server runs in another process (LOAD_MEASURE=serve).
		cfg.Addr = addr
		cfg.Codes = NewOutbox(os.Getenv("LOAD_OUTBOX"))
		cfg.Stats = HTTPStats{URL: "http://" + os.Getenv("LOAD_DEBUG") + "/stats", PID: envInt(t, "LOAD_PID", 0)}
	} else {
		st := startStack(t, n, o)
		cfg.Addr, cfg.Codes, cfg.Stats = st.addr, NewOutbox(st.outbox), st.stats()
	}
	switch mode {
	case "idle":
		cfg.Hold = envDuration(t, "LOAD_HOLD", 10*time.Second)
		cfg.duringHold = func(ctx context.Context) {
			if dir == "" {
				return
			}
			if debug := os.Getenv("LOAD_DEBUG"); debug != "" {
				if self, err := (Process{}).Stats(ctx); err == nil {
					t.Logf("load generator during the hold: %d goroutines, RSS %.1f MiB", self.Goroutines, float64(self.RSS)/(1<<20))
				}
				fetchProfiles(ctx, t, debug, dir, cfg.Hold)
				return
			}
			runtime.GC()
			writeProfile(t, dir, "heap", "idle-heap.pb.gz")
			writeProfile(t, dir, "goroutine", "idle-goroutine.pb.gz")
			stop := cpuProfile(t, filepath.Join(dir, "idle-cpu.pb.gz"))
			<-ctx.Done()
			stop()
		}
	case "login":
		if dir != "" {
			stop := cpuProfile(t, filepath.Join(dir, "login-cpu.pb.gz"))
			defer stop()
		}
	default:
		t.Fatalf("LOAD_MEASURE=%q: want idle or login", mode)
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + writeReport(t, rep))
}

// serveForLoad runs the stack until SIGINT/SIGTERM or LOAD_SERVE_FOR, with
// its debug endpoint on LOAD_DEBUG_ADDR, and prints what a load client in
// another process needs as shell variables.
func serveForLoad(t *testing.T, n int, o stackOptions) {
	st := startStack(t, n, o)
	debug := cmp.Or(os.Getenv("LOAD_DEBUG_ADDR"), "127.0.0.1:16060")
	ctx, stop := signal.NotifyContext(t.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, envDuration(t, "LOAD_SERVE_FOR", 30*time.Minute))
	defer cancel()
	fmt.Printf("LOAD_ADDR=%s LOAD_OUTBOX=%s LOAD_DEBUG=%s LOAD_PID=%d\n", st.addr, st.outbox, debug, os.Getpid())
	if err := st.srv.ServeDebug(ctx, debug); err != nil {
		t.Fatal(err)
	}
}

// fetchProfiles saves the server's heap, goroutine and CPU profiles from
// its debug endpoint during the hold.
func fetchProfiles(ctx context.Context, t *testing.T, debug, dir string, hold time.Duration) {
	secs := max(int(hold/time.Second)-1, 1)
	// A kept-alive connection would leave a goroutine on the server and
	// spoil the goroutine baseline.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, p := range []struct{ path, file string }{
		{"heap?gc=1", "idle-heap.pb.gz"},
		{"goroutine", "idle-goroutine.pb.gz"},
		{fmt.Sprintf("profile?seconds=%d", secs), "idle-cpu.pb.gz"},
	} {
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, "http://"+debug+"/debug/pprof/"+p.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("profile %s: %v", p.path, err)
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, p.file), b, 0o644)
		}
		if err != nil {
			t.Errorf("profile %s: %v", p.path, err)
		}
	}
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return n
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return d
}

func writeProfile(t *testing.T, dir, name, file string) {
	f, err := os.Create(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// cpuProfile starts the CPU profiler; the returned func stops it.
func cpuProfile(t *testing.T, path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
