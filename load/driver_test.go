package load

import (
	"bytes"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRunReportsFailures(t *testing.T) {
	// One code per client: the first session logs in, the others meet the
	// per-client limit, so their code screen never comes. The report must
	// count them under one reason and show what the screen said instead.
	const n = 3
	st := startStack(t, n, stackOptions{clientCodes: 1})
	rep, err := Run(t.Context(), Config{
		// The refused sessions wait out SessionTimeout side by side; it
		// is generous so that the one allowed login never runs into it.
		Addr: st.addr, Sessions: n, Concurrency: n, RunID: "t2",
		Codes: NewOutbox(st.outbox), SessionTimeout: 5 * time.Second, Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := writeReport(t, rep)
	if rep.OK != 1 || rep.Failed != n-1 || len(rep.Failures) != 1 {
		t.Fatalf("want 1 login and %d failures of one kind:\n%s", n-1, out)
	}
	f := rep.Failures[0]
	if f.Reason != "code screen: timeout" || f.Count != n-1 || !strings.Contains(f.Example, "Too many codes from this connection") {
		t.Errorf("failure = %+v", f)
	}
	if !strings.Contains(out, "failed "+"2 × code screen: timeout") {
		t.Errorf("report lacks the failure line:\n%s", out)
	}
}

func TestRunNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Run(t.Context(), Config{Addr: addr, Sessions: 2, Codes: NewOutbox(t.TempDir())})
	if err == nil || !strings.Contains(err.Error(), "warm-up session failed: dial: ") {
		t.Fatalf("Run = %v, want a failed warm-up", err)
	}
	rep, err := Run(t.Context(), Config{Addr: addr, Sessions: 2, Codes: NewOutbox(t.TempDir()), Warmup: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || len(rep.Failures) != 1 || !strings.HasPrefix(rep.Failures[0].Reason, "dial: ") {
		t.Errorf("report = %+v, want 2 dial failures", rep)
	}
}

// writeReport prints rep with runs of blanks collapsed, so that tests can
// look for phrases without depending on the column widths.
func writeReport(t *testing.T, rep Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := rep.Write(&b); err != nil {
		t.Fatal(err)
	}
	return blanks.ReplaceAllString(b.String(), " ")
}

var blanks = regexp.MustCompile(`[ \t]+`)

// TestRunStalledServer: a server that accepts connections and never
// speaks SSH must cost each session its SessionTimeout, in a login run and
// in an idle run's ramp-up, not the whole run.
func TestRunStalledServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, silent
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	for _, hold := range []time.Duration{0, time.Second} {
		rep, err := Run(t.Context(), Config{
			Addr: ln.Addr().String(), Sessions: 2, Concurrency: 2, Warmup: -1, Hold: hold,
			Codes: NewOutbox(t.TempDir()), SessionTimeout: 200 * time.Millisecond, Timeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed != 2 || len(rep.Failures) != 1 || rep.Failures[0].Reason != "handshake: timeout" {
			t.Errorf("hold %v: report = %+v, want 2 handshake timeouts", hold, rep)
		}
	}
}
