package load

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured.
type Report struct {
	Target      string // the loopback ip:port driven
	Sessions    int    // sessions attempted
	Concurrency int
	OK, Failed  int
	Failures    []Failure // most frequent first

	// FirstFrame is dial start to the email screen; Login is dial start to
	// the Verified banner (login runs only).
	FirstFrame, Login Latency
	// Phases split a login run's logins into steps: connect (TCP, SSH
	// handshake, PTY, shell), first frame, request (address typed to code
	// screen), read code (from the outbox) and verify (code typed to banner).
	Phases     []Phase
	Elapsed    time.Duration // the run, from the first dial
	Throughput float64       // verified logins per second
	// ClientCPU is the CPU time the load generator's process used during
	// the run: on a shared machine it is CPU the server did not get.
	ClientCPU time.Duration

	// Hold is the idle run's hold; HoldCPU the server CPU time spent during
	// it (-1 unknown) and HoldRx the bytes the server sent during it.
	Hold    time.Duration
	HoldCPU time.Duration
	HoldRx  int64

	// Before the run, at its peak (the end of the hold in an idle run), and
	// after the sessions closed and the server settled.
	Before, Peak, After Sample
	// Settled: the server's goroutines returned to their count in Before.
	Settled bool
}

// Phase is the latency of one step of the logins.
type Phase struct {
	Name string
	Latency
}

// Failure counts the sessions that failed for one reason.
type Failure struct {
	Reason  string
	Count   int
	Example string // one full error, for the operator
}

// Latency summarises durations.
type Latency struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// Percentiles summarises d with nearest-rank percentiles. It sorts d.
func Percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[max(i, 0)]
	}
	return Latency{N: len(d), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: d[len(d)-1]}
}

func (r *Report) summarize(results []result) {
	var first, login []time.Duration
	var phases [numPhases][]time.Duration
	byReason := map[string]*Failure{}
	for _, res := range results {
		if res.err != nil {
			r.Failed++
			reason := Reason(res.err)
			f := byReason[reason]
			if f == nil {
				f = &Failure{Reason: reason, Example: res.err.Error()}
				byReason[reason] = f
			}
			f.Count++
			continue
		}
		r.OK++
		first = append(first, res.firstFrame)
		if res.login > 0 {
			login = append(login, res.login)
			for p, d := range res.phases {
				phases[p] = append(phases[p], d)
			}
		}
	}
	for _, f := range byReason {
		r.Failures = append(r.Failures, *f)
	}
	slices.SortFunc(r.Failures, func(a, b Failure) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	r.FirstFrame = Percentiles(first)
	r.Login = Percentiles(login)
	if len(login) > 0 {
		for p, d := range phases {
			r.Phases = append(r.Phases, Phase{Name: phaseNames[p], Latency: Percentiles(d)})
		}
	}
	if r.Hold == 0 && r.Elapsed > 0 {
		r.Throughput = float64(r.Login.N) / r.Elapsed.Seconds()
	}
}

// IdleRSSPerSession is the server memory each held session added, in bytes,
// or -1 when unknown (also when the RSS fell: memory left by earlier work
// was returned during the run, and the growth says nothing).
func (r Report) IdleRSSPerSession() int64 {
	if r.Hold == 0 || r.OK == 0 || r.Before.RSS < 0 || r.Peak.RSS < r.Before.RSS {
		return -1
	}
	return (r.Peak.RSS - r.Before.RSS) / int64(r.OK)
}

// CPUShare is the server's CPU use as a fraction of one core: over the hold
// in an idle run, over the whole run otherwise; -1 when unknown.
func (r Report) CPUShare() float64 {
	if r.Hold > 0 {
		if r.HoldCPU < 0 {
			return -1
		}
		return r.HoldCPU.Seconds() / r.Hold.Seconds()
	}
	if r.Before.CPU < 0 || r.Peak.CPU < 0 || r.Elapsed <= 0 {
		return -1
	}
	return (r.Peak.CPU - r.Before.CPU).Seconds() / r.Elapsed.Seconds()
}

// Write prints r for a person.
func (r Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	mode := "login"
	if r.Hold > 0 {
		mode = "idle, held " + r.Hold.String()
	}
	p("target\t%s (%s), %d sessions, concurrency %d", r.Target, mode, r.Sessions, r.Concurrency)
	p("sessions\t%d ok, %d failed", r.OK, r.Failed)
	p("first frame\t%s", r.FirstFrame)
	if r.Hold == 0 {
		p("full login\t%s", r.Login)
		for _, ph := range r.Phases {
			p("  %s\t%s", ph.Name, ph.Latency)
		}
		p("throughput\t%.1f logins/s (%d in %s)", r.Throughput, r.Login.N, r.Elapsed.Round(time.Millisecond))
	}
	if r.Before.Known() || r.Peak.Known() || r.After.Known() {
		peak := "peak"
		if r.Hold > 0 {
			peak = "held"
		}
		p("server\tbefore\t%s\tafter", peak)
		p("  RSS\t%s\t%s\t%s", mib(r.Before.RSS), mib(r.Peak.RSS), mib(r.After.RSS))
		p("  goroutines\t%s\t%s\t%s", count(r.Before.Goroutines), count(r.Peak.Goroutines), count(r.After.Goroutines))
		if r.Before.Sessions >= 0 || r.Peak.Sessions >= 0 {
			p("  sessions\t%s\t%s\t%s", count(r.Before.Sessions), count(r.Peak.Sessions), count(r.After.Sessions))
		}
		if r.Before.Goroutines >= 0 {
			settled := "yes"
			if !r.Settled {
				settled = "NO"
			}
			p("  goroutines back to baseline\t%s", settled)
		}
	}
	if share := r.CPUShare(); share >= 0 {
		p("server CPU\t%.1f%% of one core", 100*share)
		if r.Hold == 0 && r.Login.N > 0 {
			cpu := r.Peak.CPU - r.Before.CPU
			p("  per login\t%s", (cpu / time.Duration(r.Login.N)).Round(time.Microsecond))
		}
	}
	if r.Elapsed > 0 {
		p("load generator CPU\t%.1f%% of one core", 100*r.ClientCPU.Seconds()/r.Elapsed.Seconds())
		if r.Hold == 0 && r.Login.N > 0 {
			p("  per login\t%s", (r.ClientCPU / time.Duration(r.Login.N)).Round(time.Microsecond))
		}
	}
	if r.Hold > 0 {
		if per := r.IdleRSSPerSession(); per >= 0 {
			p("idle memory\t%.0f KiB per session", float64(per)/1024)
		} else if r.Before.RSS >= 0 && r.Peak.RSS >= 0 {
			// The heap left by earlier work was returned during the run.
			p("idle memory\tunknown: the server's RSS fell during the run; measure on a fresh server")
		}
		p("idle output\t%.1f B/s per session", float64(r.HoldRx)/r.Hold.Seconds()/float64(max(r.OK, 1)))
	}
	for _, f := range r.Failures {
		p("failed\t%d × %s", f.Count, f.Reason)
		p("  e.g.\t%s", f.Example)
	}
	return tw.Flush()
}

func (l Latency) String() string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s\tp90 %s\tp99 %s\tmax %s\t(n=%d)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.N)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func count(n int) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
