package load

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/ui"
)

// TestLoginsEndToEnd is the CI-sized load run: 50 real SSH sessions through
// the whole login against the real stack, every one verified, and the
// process's goroutines back to their count before the run.
func TestLoginsEndToEnd(t *testing.T) {
	const n = 50
	st := startStack(t, n, stackOptions{})
	var progress strings.Builder
	rep, err := Run(t.Context(), Config{
		Addr: st.addr, Sessions: n, Concurrency: 8, Timeout: time.Minute,
		Codes: NewOutbox(st.outbox), Stats: st.stats(), Progress: &progress,
		// Pooled SMTP connections hold a dev-server goroutine each until
		// they time out; the test closes the pool itself below.
		Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := writeReport(t, rep)
	t.Log("\n" + out)
	if rep.OK != n || rep.Failed != 0 || rep.Login.N != n {
		t.Fatalf("want %d verified logins", n)
	}
	// Whether a periodic sample caught a live session depends on timing,
	// and so does the sample after, taken at once (Settle is 1 ms) while
	// the server may still be releasing the last sessions: the sample
	// before is certain, and the server's own count is checked below once
	// its goroutines are back.
	if rep.Before.Sessions != 0 || rep.Peak.CPU <= rep.Before.CPU {
		t.Errorf("server stats: before %+v, peak %+v, after %+v", rep.Before, rep.Peak, rep.After)
	}
	if !strings.Contains(progress.String(), "50/50 sessions done, 0 failed") {
		t.Errorf("progress = %q", progress.String())
	}

	if err := st.sender.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, rep.Before.Goroutines)
	if n := st.srv.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions open on the server after the run", n)
	}
}

// TestIdleEndToEnd holds real sessions on the email screen and checks that
// an idle screen sends nothing: no cursor blink, no redraw.
func TestIdleEndToEnd(t *testing.T) {
	const n = 20
	st := startStack(t, n, stackOptions{})
	stats := &countingStats{StatsReader: st.stats()}
	var duringHold atomic.Int64
	rep, err := Run(t.Context(), Config{
		Addr: st.addr, Sessions: n, Concurrency: 8, Hold: 300 * time.Millisecond,
		Timeout: time.Minute, Stats: stats, SampleEvery: 10 * time.Millisecond,
		duringHold: func(ctx context.Context) {
			before := stats.calls.Load()
			<-ctx.Done()
			duringHold.Store(stats.calls.Load() - before)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := writeReport(t, rep)
	t.Log("\n" + out)
	if rep.OK != n || rep.Failed != 0 {
		t.Fatalf("want %d held sessions", n)
	}
	if rep.Peak.Sessions != n {
		t.Errorf("server saw %d sessions at the end of the hold, want %d", rep.Peak.Sessions, n)
	}
	// The sample that ends the hold may be counted too; polling every
	// 10 ms through 300 ms would be some 30 reads.
	if n := duringHold.Load(); n > 1 {
		t.Errorf("the server's stats were read %d times during the hold; its idle CPU would count the reads", n)
	}
	if rep.HoldRx != 0 {
		t.Errorf("idle email screens sent %d bytes during the hold", rep.HoldRx)
	}
	if !rep.Settled {
		t.Errorf("goroutines: %d before, %d after", rep.Before.Goroutines, rep.After.Goroutines)
	}
	for _, want := range []string{"idle, held 300ms", "idle output 0.0 B/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// waitGoroutines waits until the process, server still up, has at most
// want goroutines (the report's baseline): leakcheck would only look after
// the stack is torn down. The bound covers sessions still ending.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCommand runs `otplogin load` as its flags would, against the real
// stack and its debug endpoint.
func TestCommand(t *testing.T) {
	st := startStack(t, 5, stackOptions{})
	dbg := httptest.NewServer(st.srv.DebugHandler())
	defer dbg.Close()
	debugAddr := strings.TrimPrefix(dbg.URL, "http://")

	var stdout, stderr strings.Builder
	o := DefaultOptions()
	o.Addr, o.Sessions, o.Concurrency, o.Settle = st.addr, 5, 2, time.Millisecond
	o.Outbox, o.DebugAddr, o.JSON = st.outbox, debugAddr, true
	err := Command(t.Context(), o, &stdout, &stderr)
	// Pooled SMTP connections keep dev-server goroutines past a 1ms settle.
	if err != nil && !strings.Contains(err.Error(), "server goroutines") {
		t.Fatalf("Command: %v\n%s", err, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	if rep.OK != 5 || rep.Login.N != 5 || rep.Before.Goroutines <= 0 || rep.Peak.CPU <= rep.Before.CPU {
		t.Errorf("report = %+v", rep)
	}
	if !strings.Contains(stderr.String(), "load: 5/5 sessions done, 0 failed") {
		t.Errorf("progress = %q", stderr.String())
	}

	// The command line checks its flags (package cli); Command checks
	// again what a name resolves to and what Run cannot take.
	for _, tc := range []struct {
		name string
		edit func(*Options)
		err  string
	}{
		{"remote target", func(o *Options) { o.Addr = "192.0.2.7:22" }, "non-loopback"},
		{"remote debug endpoint", func(o *Options) { o.Addr, o.DebugAddr, o.Hold = st.addr, "192.0.2.7:6060", time.Second }, "non-loopback"},
		{"no sessions", func(o *Options) { o.Sessions = 0 }, "sessions must be"},
	} {
		o := DefaultOptions()
		tc.edit(&o)
		err := Command(t.Context(), o, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: Command = %v, want error with %q", tc.name, err, tc.err)
		}
	}
}

// countingStats counts the reads of the server's stats.
type countingStats struct {
	StatsReader
	calls atomic.Int64
}

func (c *countingStats) Stats(ctx context.Context) (Sample, error) {
	c.calls.Add(1)
	return c.StatsReader.Stats(ctx)
}

// TestScreensFoundWithoutWords runs logins against the ui with every word
// on its screens translated: the load tool finds the screens by the
// window titles the ui sets, so a rewording cannot break a run.
func TestScreensFoundWithoutWords(t *testing.T) {
	const n = 3
	st := startStack(t, n, stackOptions{wrap: func(m *ui.Model) tea.Model { return french{m} }})
	rep, err := Run(t.Context(), Config{
		Addr: st.addr, Sessions: n, Concurrency: n, Timeout: time.Minute,
		SessionTimeout: 10 * time.Second, Codes: NewOutbox(st.outbox), Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := writeReport(t, rep); rep.OK != n || rep.Failed != 0 {
		t.Fatalf("want %d verified logins:\n%s", n, out)
	}
	// The words the load tool used to look for are gone.
	m := french{ui.New(ui.Options{})}
	for _, old := range []string{"Email:", "Code:", "Verified"} {
		if v := m.View().Content; strings.Contains(v, old) || !strings.Contains(v, "Courriel") {
			t.Fatalf("the translated screen still says %q:\n%s", old, v)
		}
	}
}

// french is the ui with its words changed, as a translation would change
// them; the window titles stay.
type french struct{ *ui.Model }

var toFrench = strings.NewReplacer("Email:", "Courriel :", "Code:", "Code :", "Verified", "Vérifié",
	"Prove you own an email address", "Prouvez que l'adresse est à vous", "Check your email", "Lisez votre courriel")

func (f french) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := f.Model.Update(msg)
	return f, cmd
}

func (f french) View() tea.View {
	v := f.Model.View()
	v.Content = toFrench.Replace(v.Content)
	return v
}
