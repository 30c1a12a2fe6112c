// Package haproxytest runs a throwaway HAProxy in front of SSH servers for
// tests: TCP mode, round robin, PROXY protocol v2 to every server, health
// checks that expect the SSH banner, its own process on a free loopback
// port, stopped when the test ends.
//
// When haproxy is not installed the test is skipped, except under CI (the
// CI environment variable is set), where it fails.
package haproxytest

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Config is what Start needs. Backends is required.
type Config struct {
	// Backends are the servers' host:port, named r1, r2, ... in order.
	Backends []string
	// CheckInterval is the health check interval (default 200ms). A
	// server is marked down after two failed checks (refused, or no SSH
	// banner within 5s: test machines can be very busy) and up after one
	// good one.
	CheckInterval time.Duration
}

// Proxy is an haproxy process owned by one test.
type Proxy struct {
	t    testing.TB
	addr string
	dir  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// configTemplate is the configuration the docs show, with shorter timers.
var configTemplate = template.Must(template.New("haproxy.cfg").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}).Parse(`global
    stats socket {{.Dir}}/admin.sock mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout check 5s
    timeout client 30m
    timeout server 30m
    # a replica that refuses the connection: try another
    option redispatch
    retries 2

frontend ssh
    bind {{.Listen}}
    default_backend otplogin

backend otplogin
    balance roundrobin
    # the check sends a PROXY header too (check-send-proxy), then wants
    # the SSH banner; an explicit "tcp-check connect" would drop the header
    option tcp-check
    tcp-check expect rstring ^SSH-2\.0-
{{- range $i, $b := .Backends}}
    server r{{inc $i}} {{$b}} send-proxy-v2 check check-send-proxy inter {{$.Inter}} fall 2 rise 1
{{- end}}
`))

// Start runs haproxy on a free 127.0.0.1 port in front of cfg.Backends and
// waits until it listens. Backends need not be up yet (see WaitUp).
func Start(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/haproxy") // not on a user's PATH on Debian
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxytest: haproxy is required in CI: %v", err)
		}
		t.Skipf("haproxytest: haproxy not installed (apt-get install haproxy): %v", err)
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 200 * time.Millisecond
	}
	p := &Proxy{t: t, dir: t.TempDir()}
	t.Cleanup(p.Stop)
	for try := 0; ; try++ {
		p.addr = freeAddr(t)
		err := p.start(bin, cfg)
		if err == nil {
			return p
		}
		if try == 2 {
			t.Fatalf("haproxytest: %v", err)
		}
	}
}

func (p *Proxy) start(bin string, cfg Config) error {
	var b strings.Builder
	err := configTemplate.Execute(&b, map[string]any{
		"Dir": p.dir, "Listen": p.addr, "Backends": cfg.Backends,
		"Inter": fmt.Sprintf("%dms", cfg.CheckInterval.Milliseconds()),
	})
	if err != nil {
		return err
	}
	p.conf = b.String()
	confPath := filepath.Join(p.dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(p.conf), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(p.dir, "haproxy.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-db", "-f", confPath) // -db: foreground
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			return fmt.Errorf("haproxy exited:\n%s", p.Log())
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("haproxy not listening on %s: %v\n%s", p.addr, err, p.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.addr }

// Config is the configuration haproxy runs with.
func (p *Proxy) Config() string { return p.conf }

// Log is what haproxy has printed so far.
func (p *Proxy) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "haproxy.log"))
	return string(b)
}

// Stop ends haproxy (SIGTERM: at once, cutting connections) and waits.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// States is each server's status by name (r1, r2, ...): "UP", "DOWN",
// "MAINT" and the transitional forms, read from the stats socket. A server
// is "UP" only once a health check has passed: haproxy takes every server
// as up when it starts.
func (p *Proxy) States() (map[string]string, error) {
	out, err := p.command("show stat")
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# "))).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("show stat: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	states := map[string]string{}
	for _, r := range rows[1:] {
		if r[col["pxname"]] == "otplogin" && r[col["svname"]] != "BACKEND" {
			st := r[col["status"]]
			if st == "UP" && !strings.HasPrefix(r[col["check_status"]], "L7OK") {
				st = "UP, not checked yet"
			}
			states[r[col["svname"]]] = st
		}
	}
	return states, nil
}

// WaitState waits until server name (r1, r2, ...) has status want.
func (p *Proxy) WaitState(t testing.TB, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		states, err := p.States()
		if err == nil && states[name] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxytest: %s is %q (%v), want %s\n%s", name, states[name], err, want, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// command sends one command to the stats socket and returns the answer.
func (p *Proxy) command(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", filepath.Join(p.dir, "admin.sock"), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	return string(b), err
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("haproxytest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
