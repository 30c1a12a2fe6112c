package serve

import (
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/internal/lograte"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Refused(reason string)            { r.add("refused " + reason) }
func (r *recorder) SessionStarted()                  { r.add("started") }
func (r *recorder) SessionEnded(end, outcome string) { r.add("ended " + end + " " + outcome) }
func (r *recorder) Panicked()                        { r.add("panicked") }

func (r *recorder) count(e string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.events {
		if x == e {
			n++
		}
	}
	return n
}

// waitCount polls until the recorder holds n of e.
func (r *recorder) waitCount(t *testing.T, e string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for r.count(e) != n {
		if time.Now().After(deadline) {
			got := r.count(e) // count locks r.mu itself
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%d of %q, want %d; events %v", got, e, n, r.events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestObserverAndRefusalLog checks what the Observer is told of sessions,
// refusals and panics, and that a flood of refused connections is logged
// at info with the client and the limit, a few lines a second, then one
// line with the number held back.
func TestObserverAndRefusalLog(t *testing.T) {
	rec := &recorder{}
	// The limits' clock stands still: the whole flood falls in one second
	// of the log's allowance however slow the machine.
	clock := fakeclock.New(time.Now())
	ts := startServer(t, func(c *Config) {
		c.Observer = rec
		c.Now = clock.Now
		c.ConnRate, c.ConnBurst = rate.Every(time.Hour), 3
		inner := c.NewModel
		c.NewModel = func(s Session) tea.Model {
			if s.User() == "panic" {
				panic("NewModel panics for this test")
			}
			return inner(s)
		}
	})

	// A session that quits by itself: started, then ended with its outcome.
	sess := openTerm(t, dial(t, ts.addr), 80, 24, nil)
	ts.waitEvent(t, size80x24)
	sess.typeText(t, "\r")
	sess.wait(t)
	rec.waitCount(t, "ended quit submitted", 1)
	if rec.count("started") != 1 {
		t.Errorf("%d sessions started, want 1", rec.count("started"))
	}

	// No PTY: refused, with reason= in the log.
	c := dial(t, ts.addr)
	plain, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Shell(); err != nil {
		t.Fatal(err)
	}
	_ = waitSession(t, plain)
	rec.waitCount(t, "refused "+RefusedNoPTY, 1)
	waitFor(t, ts.logs, "session refused")
	if !strings.Contains(ts.logs.String(), "client=127.0.0.1 reason=no_pty") {
		t.Errorf("no-PTY refusal not logged with client and reason:\n%s", ts.logs)
	}

	// A panic in NewModel ends that session and is counted.
	pc, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User: "panic", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ps := openTerm(t, pc, 80, 24, nil)
	ps.wait(t)
	rec.waitCount(t, "panicked", 1)
	rec.waitCount(t, "ended panic ", 1) // every started session is reported ended
	if rec.count("started") != 2 {
		t.Errorf("%d sessions started, want 2", rec.count("started"))
	}

	// The burst is spent: a flood of connections, each refused.
	const flood = 40
	for range flood {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(waitTime))
		_, _ = io.ReadAll(nc)
		nc.Close()
	}
	rec.waitCount(t, "refused "+RefusedConnRate, flood)
	// The summary comes a second after the first refusal it leaves out;
	// a flood slower than that is summed up in more than one line.
	summaries := regexp.MustCompile(`refusals not logged limit=conn_rate suppressed=(\d+)`)
	suppressed := func() (n int) {
		for _, m := range summaries.FindAllStringSubmatch(ts.logs.String(), -1) {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
		return n
	}
	for deadline := time.Now().Add(waitTime); suppressed() != flood-lograte.DefaultPerSecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals summed up as not logged, want %d:\n%s", suppressed(), flood-lograte.DefaultPerSecond, ts.logs)
		}
	}
	lines := strings.Split(ts.logs.String(), "\n")
	refusedLines := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.Contains(l, "connection refused") })
	if len(refusedLines) != lograte.DefaultPerSecond {
		t.Errorf("%d connection refused lines, want %d:\n%s", len(refusedLines), lograte.DefaultPerSecond, strings.Join(refusedLines, "\n"))
	}
	for _, l := range refusedLines {
		if !strings.HasPrefix(l, "INFO") || !strings.Contains(l, "client=127.0.0.1 limit=conn_rate") {
			t.Errorf("refusal line %q: want info, client and limit", l)
		}
	}
	if got := ts.Stats().Refused; got != flood {
		t.Errorf("stats refused %d, want %d", got, flood)
	}
}

// TestObserverLineMode: a session in line mode (ACCESSIBLE=1) is reported
// ended by how it ended, not as a panic; so is one the time limit ends,
// whose visitor is told why.
func TestObserverLineMode(t *testing.T) {
	rec := &recorder{}
	ls := startLoginServer(t, func(c *Config) {
		c.Observer = rec
		c.MaxTimeout = 3 * time.Second // the login is quit a second before
	})
	sess := openTerm(t, dial(t, ls.addr), 80, 24, map[string]string{"ACCESSIBLE": "1"})
	waitFor(t, sess.out, "To leave, type quit.")
	sess.typeText(t, "quit\r")
	if status := sess.wait(t); status != 1 {
		t.Errorf("quit: exit status %d, want 1", status)
	}
	rec.waitCount(t, "ended quit cancelled", 1)

	sess = openTerm(t, dial(t, ls.addr), 80, 24, map[string]string{"ACCESSIBLE": "1"})
	waitFor(t, sess.out, "To leave, type quit.")
	sess.wait(t) // the time limit ends it
	if !strings.Contains(sess.out.String(), lineTimeLimit) {
		t.Errorf("the visitor was not told why:\n%q", sess.out.String())
	}
	rec.waitCount(t, "ended time_limit cancelled", 1)
	if n := rec.count("ended panic "); n != 0 {
		t.Errorf("%d sessions reported as panics", n)
	}
}
