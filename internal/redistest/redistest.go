// Package redistest runs throwaway Redis deployments for tests, each from
// real redis-server processes on free loopback ports with their data in
// t.TempDir(), no persistence, and stopped when the test ends: one server
// (Start, StartWith: TLS, extra settings), a Redis Cluster (StartCluster)
// and a Sentinel group (StartSentinel).
//
// When redis-server is not installed the test is skipped, except under CI
// (the CI environment variable is set), where it fails: CI must never pass by
// skipping the Redis tests.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to answer PING, and
// stopTimeout how long it may take to exit after SIGTERM.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// Config says how to run one server. The zero value is a plain server.
type Config struct {
	// Args are extra redis-server arguments, e.g. "--maxmemory-policy",
	// "allkeys-lru".
	Args []string
	// TLS, when set, makes the server speak only TLS, with a certificate
	// for 127.0.0.1 and localhost issued by this CA.
	TLS *CA
	// Conf is written to a file in the server's directory and passed as
	// its config file; a Sentinel keeps its state there.
	Conf string
	// Sentinel runs the server as a Redis Sentinel (Conf is required).
	Sentinel bool
}

// Server is a redis-server process owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cfg  Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// Start runs a redis-server on a free 127.0.0.1 port and stops it in
// t.Cleanup. It skips the test when redis-server is missing, or fails it when
// the CI environment variable is set.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith is Start with a Config.
func StartWith(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := need(t, "redis-server", "redis-server")
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cfg: cfg}
	if cfg.TLS != nil {
		cfg.TLS.writeServerFiles(t, s.dir)
	}
	t.Cleanup(s.Stop)
	// Another process may grab the port between freePort and redis-server
	// binding it, so try a few ports before giving up.
	for try := 0; ; try++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if try == 2 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// need finds a program or skips the test, failing it under CI.
func need(t testing.TB, prog, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: %s is required in CI: %v", prog, err)
		}
		t.Skipf("redistest: %s not installed (apt-get install %s): %v", prog, pkg, err)
	}
	return bin
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is a redis:// URL (rediss:// with TLS) for database 0 of the server.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Dir is the server's working directory.
func (s *Server) Dir() string { return s.dir }

// Freeze stops the process with SIGSTOP, as a Redis stalled by the kernel,
// a full disk or a fork would be: connections and commands are accepted by
// the kernel and queue until Thaw.
func (s *Server) Freeze() { s.signal(sigStop) }

// Thaw resumes a frozen server with SIGCONT.
func (s *Server) Thaw() { s.signal(sigCont) }

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	_ = s.log.Close()
}

func (s *Server) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || sig == nil {
		s.t.Fatalf("redistest: signal %v to a stopped server or on a system without it", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Stop terminates the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if sigCont != nil {
		_ = s.cmd.Process.Signal(sigCont) // a frozen server cannot act on SIGINT
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("redistest: redis-server on %s ignored SIGINT for %v and was killed", s.Addr(), stopTimeout)
	}
	s.cmd = nil
	_ = s.log.Close()
}

// Restart starts the server again on the same port, as an operator restarting
// Redis would. The data is gone: the server keeps nothing on disk.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Log returns what the server has logged so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logPath := filepath.Join(s.dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	var args []string
	if s.cfg.Conf != "" {
		conf := filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(s.cfg.Conf), 0o600); err != nil {
			logf.Close()
			return err
		}
		args = append(args, conf)
	}
	if s.cfg.Sentinel {
		args = append(args, "--sentinel")
	}
	port := "--port"
	if s.cfg.TLS != nil {
		args = append(args, "--port", "0",
			"--tls-cert-file", filepath.Join(s.dir, "server.crt"),
			"--tls-key-file", filepath.Join(s.dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.crt"),
			"--tls-auth-clients", "no")
		port = "--tls-port"
	}
	args = append(args, port, strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir, "--daemonize", "no")
	if !s.cfg.Sentinel {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	args = append(args, s.cfg.Args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := waitPing(ctx, s.Addr(), s.tlsConfig(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		logf.Close()
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("redis-server on %s not ready: %w\n%s", s.Addr(), err, b)
	}
	s.cmd, s.done, s.log = cmd, done, logf
	return nil
}

// tlsConfig is how a client reaches the server: nil for cleartext.
func (s *Server) tlsConfig() *tls.Config {
	if s.cfg.TLS == nil {
		return nil
	}
	return s.cfg.TLS.ClientConfig()
}

// waitPing polls until the server answers PING, it exits, or ctx ends.
func waitPing(ctx context.Context, addr string, tc *tls.Config, exited <-chan struct{}) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(ctx, addr, tc)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// ping sends PING in the inline protocol, which needs no client library.
func ping(ctx context.Context, addr string, tc *tls.Config) error {
	var conn net.Conn
	var err error
	if tc != nil {
		conn, err = (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSpace(line), []byte("+PONG")) {
		// "-LOADING ..." while the server starts up.
		return fmt.Errorf("PING: %s", strings.TrimSpace(string(line)))
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
