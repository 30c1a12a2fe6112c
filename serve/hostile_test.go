package serve

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// These tests send what a stranger may send: byte streams no terminal
// would produce, through real SSH sessions into the real ui. Afterwards the
// server must still serve a full login and hold no more goroutines than
// before.

// fiveBytes once ended the whole server: the 8-bit CSI form of an X10
// mouse report, 0x9B 'M' and three bytes, was sliced as if it were the
// 3-byte ESC [ M form. A Windows-1252 terminal sends 0x9B for "›".
const fiveBytes = "\x9bM:]m"

func TestFiveBytesOverSSH(t *testing.T) {
	ls := startLoginServer(t, nil)
	sess := openTerm(t, dial(t, ls.addr), 80, 24, nil)
	waitFor(t, sess.out, "Email")
	sess.typeText(t, fiveBytes)
	sess.typeText(t, "\x03") // Ctrl+C: the session is still there to quit
	sess.wait(t)
	assertNoPanicLogged(t, ls)
	loginOnce(t, ls, "after-five-bytes@example.com")
}

// TestFiveBytesOpenSSH sends the bytes as the report did,
// printf '\x9bM:]m' | ssh -tt -p PORT anyone@host, with a Ctrl+C after
// them so that the session ends without waiting for the idle timeout.
func TestFiveBytesOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	ls := startLoginServer(t, nil)
	_, port, err := net.SplitHostPort(ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*waitTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-tt", "-F", "/dev/null", "-p", port,
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "anyone@127.0.0.1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &safeBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ssh -tt with a pipe for input reports a 0x0 window; the login must
	// show all the same.
	waitFor(t, out, "Email")
	if _, err := io.WriteString(stdin, fiveBytes); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdin, "\x03")
	_ = cmd.Wait() // Ctrl+C ends the session; its exit status does not matter here
	waitFor(t, ls.logs, "session end")
	assertNoPanicLogged(t, ls)
	loginOnce(t, ls, "after-openssh@example.com")
}

// TestHostileStreams runs many sessions at once, each sending a random
// stream of malformed input (fixed seeds) in random chunks or in one write,
// on the email screen and on the code screen.
func TestHostileStreams(t *testing.T) {
	const sessions = 24
	ls := startLoginServer(t, func(c *Config) {
		c.MaxSessionsPerClient = 2 * sessions
		c.ConnRate, c.ConnBurst = rate.Inf, 2*sessions
	})
	// A first login starts what lives as long as the server (the mail
	// sender's pooled connection), so that the baseline holds it.
	loginOnce(t, ls, "before-hostile@example.com")
	ls.waitStats(t, "server idle", func(s Stats) bool { return s.Conns == 0 })
	baseline := runtime.NumGoroutine()

	// Parallel subtests, so that each session may fail on its own; Run
	// returns when all of them have.
	t.Run("sessions", func(t *testing.T) {
		for i := range sessions {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(uint64(i), 0x0715))
				client := dial(t, ls.addr)
				sess := openTerm(t, client, 20+rng.IntN(100), 5+rng.IntN(40), nil)
				waitFor(t, sess.out, "Email")
				if i%2 == 1 { // get to the code screen first
					sess.typeText(t, fmt.Sprintf("hostile%d@example.com\r", i))
					waitFor(t, sess.out, "Check your email")
				}
				stream := hostileStream(rng, 4<<10+rng.IntN(28<<10))
				if i%4 == 0 {
					_, _ = sess.stdin.Write(stream) // all at once
				} else {
					for len(stream) > 0 {
						n := min(len(stream), 1+rng.IntN(512))
						if _, err := sess.stdin.Write(stream[:n]); err != nil {
							break // the session ended: a Ctrl+C or Esc in the stream
						}
						stream = stream[n:]
					}
				}
				// Ctrl+C ends the session, unless the stream left the
				// decoder inside a paste or a string, which takes it as
				// text: then the client hangs up, as a visitor would.
				_, _ = sess.stdin.Write([]byte("\x03"))
				ended := make(chan struct{})
				go func() { _ = sess.Wait(); close(ended) }()
				select {
				case <-ended:
				case <-time.After(time.Second):
					_ = client.Close()
					<-ended
				}
				_ = client.Close()
			})
		}
	})

	ls.waitStats(t, "sessions released", func(s Stats) bool { return s.Sessions == 0 && s.Conns == 0 })
	assertNoPanicLogged(t, ls)
	loginOnce(t, ls, "after-hostile@example.com")
	ls.waitStats(t, "goroutines back to baseline", func(s Stats) bool {
		return s.Sessions == 0 && s.Conns == 0 && runtime.NumGoroutine() <= baseline
	})
}

// hostileStream returns about n bytes built from the fragments a hostile or
// broken terminal sends: C1 controls, truncated and over-long escape
// sequences, mouse and keyboard reports, pastes, invalid UTF-8, NUL and
// plain noise.
func hostileStream(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	digits := func() string { return fmt.Sprint(rng.IntN(100000)) }
	fragments := []func(){
		func() { b.WriteByte(byte(0x80 + rng.IntN(0x20))) }, // a C1 control
		func() { b.WriteString(fiveBytes) },
		func() { b.WriteString("\x9bM" + string(rune(rng.IntN(3)))) }, // 8-bit X10, short
		func() { b.WriteString("\x1b[M" + string([]byte{byte(rng.IntN(256)), byte(rng.IntN(256))})) },
		func() { b.WriteString("\x1b[<" + digits() + ";" + digits() + ";" + digits() + "M") },                 // SGR mouse
		func() { b.WriteString("\x9b<" + digits() + ";" + digits()) },                                         // truncated 8-bit SGR mouse
		func() { b.WriteString("\x1b[" + digits() + ";" + digits() + "M") },                                   // URXVT mouse
		func() { b.WriteString("\x1b[" + digits() + ":" + digits() + ":" + digits() + ";" + digits() + "u") }, // kitty key
		func() { b.WriteString("\x1b[" + strings.Repeat("1;", rng.IntN(300))) },                               // over-long CSI
		func() { b.WriteString("\x1b]" + strings.Repeat("x", rng.IntN(2000))) },                               // OSC, no end
		func() { b.WriteString("\x9d11;rgb:ffff/0000/" + digits() + "\x9c") },                                 // 8-bit OSC
		func() { b.WriteString("\x1bP" + digits() + "$r" + strings.Repeat("q", rng.IntN(500))) },              // DCS, no end
		func() { b.WriteString("\x90+r" + digits() + "\x1b\\") },                                              // 8-bit DCS
		func() { b.WriteString("\x1b_G" + strings.Repeat("A", rng.IntN(500))) },                               // APC
		func() { b.WriteString("\x9f" + digits()) },                                                           // 8-bit APC, no end
		func() { b.WriteString("\x1b[200~" + digits() + "@example.com") },                                     // paste, no end
		func() { b.WriteString("\x1b[201~") },                                                                 // paste end alone
		func() { b.WriteString("\x1b[I\x1b[O") },                                                              // focus
		func() { b.WriteString("\x1b[?" + digits() + ";" + digits() + "$y") },                                 // mode report
		func() { b.WriteString("\x1b[" + digits() + ";" + digits() + "R") },                                   // cursor report
		func() { b.Write([]byte{0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f}) },                            // invalid UTF-8
		func() { b.WriteByte(0) },
		func() { b.WriteByte(0x1b) },
		func() { b.WriteString(digits()) },
		func() { b.WriteString("\x7f\x7f\b") },
		func() { // noise
			for range rng.IntN(64) {
				b.WriteByte(byte(rng.IntN(256)))
			}
		},
	}
	for b.Len() < n {
		fragments[rng.IntN(len(fragments))]()
	}
	return b.Bytes()
}

// loginOnce logs in as address from start to finish over SSH.
func loginOnce(t *testing.T, ls *loginServer, address string) {
	t.Helper()
	client := dial(t, ls.addr)
	defer client.Close()
	sess := openTerm(t, client, 80, 24, nil)
	waitFor(t, sess.out, "Email")
	sess.typeText(t, address+"\r")
	code := ls.code(t, address)
	waitFor(t, sess.out, "Check your email")
	sess.typeText(t, code+"\r")
	waitFor(t, sess.out, "Verified")
	sess.typeText(t, "\r")
	if status := sess.wait(t); status != 0 {
		t.Errorf("login as %s: exit status %d, want 0", address, status)
	}
}

// assertNoPanicLogged fails when the server recovered a panic: a recover
// keeps the server alive, but a panic on input is still a bug.
func assertNoPanicLogged(t *testing.T, ls *loginServer) {
	t.Helper()
	if logs := ls.logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("the server recovered a panic:\n%s", logs)
	}
}

// requireTool skips when bin is missing, except in CI, where it fails.
func requireTool(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", bin, err)
		}
		t.Skipf("%s not installed", bin)
	}
}
