// Package load drives real SSH sessions against an otplogin SSH server and
// reports what they cost: how many logins succeed, how fast, and how much
// memory, CPU and goroutines the server spends on them.
//
// A login session does what a person does: it dials, asks for a PTY, waits
// for the email screen, types a distinct address, waits for the code screen,
// reads the mailed code from the operator's dev outbox, types it and waits for
// the success screen. An idle run (Config.Hold > 0) opens every session to
// its first frame and keeps them all open, to measure what idle sessions cost.
//
// Targets must be loopback addresses: this is a tool for measuring one host,
// not for loading someone else's.
package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/internal/proccpu"
	"github.com/otplogin/otplogin/ui"
)

// idleQuiet is the wait between the last session's first frame and the
// start of an idle run's hold.
const idleQuiet = time.Second

// Defaults of Config.
const (
	defaultTimeout        = 2 * time.Minute
	defaultSessionTimeout = 30 * time.Second
	defaultSettle         = 10 * time.Second
)

// Bounds on a run, so that a typo cannot start an unbounded one.
const (
	MaxSessions    = 100_000
	MaxConcurrency = 5_000
)

// Screens are the byte strings that mark each screen of the UI in the
// terminal output as the server sends it, escape sequences included.
type Screens struct {
	Email    string // the email screen: the first frame
	Code     string // the code screen, once the code was sent
	Verified string // the success screen
}

// DefaultScreens finds the ui package's screens by the window title each
// one sets (ui.Screen), which a terminal shows in its title bar, not among
// the words on screen: rewording or translating the screens does not
// break a run.
func DefaultScreens() Screens {
	return Screens{
		Email:    ansi.SetWindowTitle(string(ui.ScreenEmail)),
		Code:     ansi.SetWindowTitle(string(ui.ScreenCode)),
		Verified: ansi.SetWindowTitle(string(ui.ScreenVerified)),
	}
}

// CodeReader finds the code most recently mailed to an address, waiting for
// the message to arrive until ctx is done.
type CodeReader interface {
	Code(ctx context.Context, address string) (string, error)
}

// StatsReader reads the server's resource use.
type StatsReader interface {
	Stats(ctx context.Context) (Sample, error)
}

// Config describes a run. Zero values mean the defaults in their comments.
type Config struct {
	// Addr is the server's host:port; the host must be a loopback address
	// or a name that resolves only to loopback addresses.
	Addr string
	// User is the SSH user name (default "load").
	User string
	// Sessions is the number of sessions to run (default 1).
	Sessions int
	// Concurrency is the number of sessions dialling or logging in at once
	// (default min(Sessions, 10)). In an idle run it only paces the ramp-up:
	// every session stays open for Hold.
	Concurrency int
	// Timeout bounds the whole run, Hold included (default 2m).
	Timeout time.Duration
	// SessionTimeout bounds one login, or one session's ramp-up to its
	// first frame in an idle run (default 30s).
	SessionTimeout time.Duration
	// Hold > 0 makes an idle run: open every session to its first frame,
	// wait a second for the server to go quiet, keep every session open for
	// Hold, sample the server, then close them.
	Hold time.Duration
	// Settle bounds two waits (default 10s each): before the run, for the
	// server to go quiet after the warm-up so that the goroutine baseline
	// holds no session's leftovers; after it, for the goroutines to return
	// to that baseline.
	Settle time.Duration
	// SampleEvery is the period of server samples taken to find the peak
	// during a login run (default 250ms).
	SampleEvery time.Duration
	// Warmup sessions open to their first frame and quit before the
	// baseline sample; they are not counted,
	// so that what a server starts once (a signal loop, a connection pool)
	// is not taken for a leak (default 1; -1 for none). A failed warm-up
	// fails the run: the target is not working.
	Warmup int
	// RunID goes into every address, load-<RunID>-<i>@<Domain>, so that
	// runs against one server do not share per-address limits (default:
	// random).
	RunID string
	// Domain of the addresses (default "example.test").
	Domain string
	// Screens identifies the UI's screens (default DefaultScreens()).
	Screens Screens
	// Codes reads mailed codes; required for a login run.
	Codes CodeReader
	// Stats reads the server's resource use; nil leaves those figures out.
	Stats StatsReader
	// Progress receives a progress bar (a terminal) or progress lines;
	// nil shows none.
	Progress io.Writer

	// duringHold, if set, runs during an idle run's hold with a context
	// that ends with it (tests take profiles there).
	duringHold func(context.Context)
}

func (c Config) withDefaults() (Config, error) {
	if c.User == "" {
		c.User = "load"
	}
	if c.Sessions == 0 {
		c.Sessions = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = min(c.Sessions, 10)
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.Warmup == 0 {
		c.Warmup = 1
	}
	if c.Settle == 0 {
		c.Settle = defaultSettle
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = 250 * time.Millisecond
	}
	if c.Domain == "" {
		c.Domain = "example.test"
	}
	if c.Screens == (Screens{}) {
		c.Screens = DefaultScreens()
	}
	if c.RunID == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return c, fmt.Errorf("load: run id: %w", err)
		}
		c.RunID = hex.EncodeToString(b[:])
	}
	switch {
	case c.Warmup < -1:
		return c, errors.New("load: warm-up must be -1 (none) or more")
	case c.Sessions < 1 || c.Sessions > MaxSessions:
		return c, fmt.Errorf("load: sessions must be 1..%d, got %d", MaxSessions, c.Sessions)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return c, fmt.Errorf("load: concurrency must be 1..%d, got %d", MaxConcurrency, c.Concurrency)
	case c.Timeout < 0 || c.SessionTimeout < 0 || c.Hold < 0 || c.Settle < 0 || c.SampleEvery < 0:
		return c, errors.New("load: durations must not be negative")
	case c.Hold > 0 && c.Hold+idleQuiet >= c.Timeout:
		return c, fmt.Errorf("load: hold %v must be shorter than the timeout %v", c.Hold, c.Timeout)
	case c.Hold == 0 && c.Codes == nil:
		return c, errors.New("load: a login run needs a code reader (the dev outbox)")
	case c.Screens.Email == "" || c.Screens.Code == "" || c.Screens.Verified == "":
		return c, errors.New("load: every screen marker must be set")
	}
	c.Concurrency = min(c.Concurrency, c.Sessions)
	return c, nil
}

// Address is the address session i of run id types.
func Address(runID string, i int, domain string) string {
	return fmt.Sprintf("load-%s-%d@%s", runID, i, domain)
}

// Run drives cfg.Sessions sessions against cfg.Addr and reports on them.
// A session that fails is counted with its reason; Run itself fails only
// when the run cannot start (bad config, a non-loopback target).
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	target, err := loopback(ctx, cfg.Addr)
	if err != nil {
		return Report{}, err
	}
	r := &runner{cfg: cfg, target: target}
	if err := r.warmup(ctx); err != nil {
		return Report{}, err
	}
	return r.run(ctx), nil
}

// warmup runs cfg.Warmup sessions one after another, each to its first
// frame: enough to start what a server starts once, without needing mail.
func (r *runner) warmup(ctx context.Context) error {
	for i := range r.cfg.Warmup {
		s, res := r.open(ctx, r.cfg.RunID+"-warmup", i)
		if res.err != nil {
			return fmt.Errorf("load: warm-up session failed: %w", res.err)
		}
		s.quit()
		s.close()
	}
	return nil
}

// runner holds one run's state.
type runner struct {
	cfg    Config
	target string // the resolved loopback ip:port

	done   atomic.Int64 // sessions finished, for the progress bar
	failed atomic.Int64
	rx     atomic.Int64 // bytes received from the server during Hold

	mu      sync.Mutex
	results []result
}

// result is how one session went.
type result struct {
	firstFrame time.Duration // dial start to the email screen
	login      time.Duration // dial start to the Verified banner
	phases     [numPhases]time.Duration
	err        error // nil: success
}

// phase is a step of a login, timed on its own to show where time goes.
type phase int

const (
	phaseConnect    phase = iota // TCP, SSH handshake, PTY, shell
	phaseFirstFrame              // shell started to the email screen
	phaseRequest                 // address typed to the code screen (the mail was sent)
	phaseReadCode                // reading the code from the outbox
	phaseVerify                  // code typed to the Verified banner
	numPhases
)

var phaseNames = [numPhases]string{"connect", "first frame", "request", "read code", "verify"}

func (r *runner) record(res result) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	if res.err != nil {
		r.failed.Add(1)
	}
	r.done.Add(1)
}

func (r *runner) run(parent context.Context) Report {
	cfg := r.cfg
	rep := Report{
		Target:      r.target,
		Sessions:    cfg.Sessions,
		Concurrency: cfg.Concurrency,
		Hold:        cfg.Hold,
	}
	rep.Before = r.baseline(parent)
	ctx, cancel := context.WithTimeout(parent, cfg.Timeout)
	defer cancel()

	stopProgress := r.progress(cfg.Progress)

	clientStart := proccpu.Self()
	start := time.Now()
	if cfg.Hold > 0 {
		// No periodic sampling here: it would poll the server through the
		// hold and count its own cost as the idle sessions' CPU.
		rep.Peak, rep.HoldCPU, rep.HoldRx = r.idle(ctx)
		rep.Elapsed = time.Since(start)
	} else {
		peak := newPeakSampler(ctx, cfg.Stats, cfg.SampleEvery)
		r.logins(ctx)
		rep.Elapsed = time.Since(start)
		rep.Peak = maxSample(peak.stop(), r.sample(ctx))
	}
	rep.ClientCPU = proccpu.Self() - clientStart
	stopProgress()

	rep.After, rep.Settled = r.settle(parent, rep.Before)
	rep.summarize(r.results)
	return rep
}

// eachSession calls do for every session index, cfg.Concurrency at a time,
// and returns when all calls have.
func (r *runner) eachSession(do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < r.cfg.Sessions; i = int(next.Add(1)) - 1 {
				do(i)
			}
		})
	}
	wg.Wait()
}

// logins runs login sessions, cfg.Concurrency at a time.
func (r *runner) logins(ctx context.Context) {
	r.eachSession(func(i int) {
		if ctx.Err() != nil {
			r.record(result{err: phaseErr("start", ctx.Err())})
			return
		}
		r.record(r.login(ctx, r.cfg.RunID, i))
	})
}

// login runs session i of run runID through the whole login.
func (r *runner) login(ctx context.Context, runID string, i int) result {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SessionTimeout)
	defer cancel()
	var res result
	start := time.Now()
	mark := start
	lap := func(p phase) {
		now := time.Now()
		res.phases[p] = now.Sub(mark)
		mark = now
	}
	s, err := dial(ctx, ctx, r.target, r.cfg.User)
	if err != nil {
		return result{err: err}
	}
	defer s.close()
	lap(phaseConnect)
	addr := Address(runID, i, r.cfg.Domain)

	if err := s.waitFor(ctx, "email screen", r.cfg.Screens.Email, addr); err != nil {
		return result{err: err}
	}
	lap(phaseFirstFrame)
	res.firstFrame = mark.Sub(start)
	if err := s.typeText("type address", addr+"\r"); err != nil {
		return result{err: err}
	}
	if err := s.waitFor(ctx, "code screen", r.cfg.Screens.Code, addr); err != nil {
		return result{err: err}
	}
	lap(phaseRequest)
	code, err := r.cfg.Codes.Code(ctx, addr)
	if err != nil {
		return result{err: phaseErr("read code", err)}
	}
	lap(phaseReadCode)
	if err := s.typeText("type code", code+"\r"); err != nil {
		return result{err: err}
	}
	if err := s.waitFor(ctx, "verified", r.cfg.Screens.Verified, addr); err != nil {
		return result{err: err}
	}
	lap(phaseVerify)
	res.login = mark.Sub(start)
	s.quit()
	return res
}

// idle opens every session to its first frame, holds them all open for
// cfg.Hold, and samples the server at the end of the hold. It returns that
// sample, the server CPU spent during the hold and the bytes the server
// sent during it.
func (r *runner) idle(ctx context.Context) (peak Sample, cpu time.Duration, rx int64) {
	sessions := make([]*sshSession, r.cfg.Sessions)
	r.eachSession(func(i int) {
		s, res := r.open(ctx, r.cfg.RunID, i)
		sessions[i] = s
		r.record(res)
	})
	defer func() {
		var cwg sync.WaitGroup
		for _, s := range sessions {
			if s != nil {
				cwg.Go(s.close)
			}
		}
		cwg.Wait()
	}()

	// Count only what the server sends once every session sits idle: the
	// rest of a first frame may still be on its way when a busy server
	// drew the marker, so the count starts after a quiet period.
	for _, s := range sessions {
		if s != nil {
			s.drain(&r.rx)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(idleQuiet):
	}
	r.rx.Store(0)
	first := r.sample(ctx)
	hctx, stop := context.WithTimeout(ctx, r.cfg.Hold)
	var hwg sync.WaitGroup
	if r.cfg.duringHold != nil {
		hwg.Go(func() { r.cfg.duringHold(hctx) })
	}
	<-hctx.Done()
	stop()
	peak = r.sample(ctx)
	hwg.Wait()
	rx = r.rx.Load()
	if first.CPU >= 0 && peak.CPU >= 0 {
		cpu = peak.CPU - first.CPU
	} else {
		cpu = -1
	}
	return peak, cpu, rx
}

// open dials session i of run runID and waits for its first frame; on success the
// session stays open for the caller.
func (r *runner) open(ctx context.Context, runID string, i int) (*sshSession, result) {
	sctx, cancel := context.WithTimeout(ctx, r.cfg.SessionTimeout)
	defer cancel()
	start := time.Now()
	// The session must outlive sctx, so it is bound to the run's ctx;
	// sctx bounds only the setup and the wait for the first frame.
	s, err := dial(ctx, sctx, r.target, r.cfg.User)
	if err != nil {
		return nil, result{err: err}
	}
	stop := context.AfterFunc(sctx, s.abort)
	err = s.waitFor(sctx, "email screen", r.cfg.Screens.Email, Address(runID, i, r.cfg.Domain))
	if !stop() || err != nil {
		s.close()
		if err == nil {
			err = phaseErr("email screen", sctx.Err())
		}
		return nil, result{err: err}
	}
	return s, result{firstFrame: time.Since(start)}
}

// sample reads the server's stats, or returns an unknown sample.
func (r *runner) sample(ctx context.Context) Sample {
	if r.cfg.Stats == nil {
		return unknownSample()
	}
	s, err := r.cfg.Stats.Stats(ctx)
	if err != nil {
		return unknownSample()
	}
	return s
}

// quietEvery is the interval between the samples that must agree for the
// baseline.
const quietEvery = 50 * time.Millisecond

// baselineWait is the least time baseline waits for the server to be quiet.
const baselineWait = 5 * time.Second

// baseline samples the server once it is quiet. The warm-up sessions have
// closed on our side, but the server may still be tearing them down, one
// goroutine at a time; a sample taken then sets the bar for "back to
// baseline" too high and hides goroutines a run leaves behind. Quiet is no
// open session and two samples quietEvery apart with the same goroutine
// count. After cfg.Settle, or baselineWait if that is longer, it takes the
// last sample as it is: a short Settle (which bounds the wait for the run's
// own goroutines to go) must not cut short the wait for the warm-up's.
func (r *runner) baseline(ctx context.Context) Sample {
	prev := r.sample(ctx)
	if r.cfg.Stats == nil {
		return prev
	}
	bound := time.NewTimer(max(r.cfg.Settle, baselineWait))
	defer bound.Stop()
	tick := time.NewTicker(quietEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return prev
		case <-bound.C:
			return prev
		case <-tick.C:
		}
		s := r.sample(ctx)
		if s.Goroutines == prev.Goroutines && s.Sessions <= 0 { // -1: unknown
			return s
		}
		prev = s
	}
}

// settle waits until the server's goroutines are back to their count in
// before, or cfg.Settle passes, and returns the last sample.
func (r *runner) settle(ctx context.Context, before Sample) (Sample, bool) {
	if r.cfg.Stats == nil {
		return unknownSample(), false
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Settle)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := r.sample(ctx)
		if before.Goroutines >= 0 && s.Goroutines >= 0 && s.Goroutines <= before.Goroutines {
			return s, true
		}
		select {
		case <-ctx.Done():
			return r.sample(context.WithoutCancel(ctx)), false
		case <-tick.C:
		}
	}
}

// loopback resolves addr and refuses anything but a loopback target.
func loopback(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("load: target %q: %w", addr, err)
	}
	if host == "" {
		return "", fmt.Errorf("load: target %q has no host; use 127.0.0.1", addr)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return "", fmt.Errorf("load: resolve %q: %w", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("load: %q resolves to nothing", host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return "", fmt.Errorf("load: refusing non-loopback target %s (%s): load tests run against this host only", addr, ip)
		}
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}
