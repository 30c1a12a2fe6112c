package load

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/otplogin/otplogin/internal/proccpu"
)

// Sample is the server's resource use at one moment. A negative field is
// unknown to the StatsReader that took the sample.
type Sample struct {
	RSS        int64         // resident set size, bytes
	Goroutines int           // live goroutines
	Sessions   int           // open SSH sessions
	CPU        time.Duration // user+system CPU time used since the process started
}

func unknownSample() Sample { return Sample{RSS: -1, Goroutines: -1, Sessions: -1, CPU: -1} }

// Known reports whether any field of s is known.
func (s Sample) Known() bool {
	return s.RSS >= 0 || s.Goroutines >= 0 || s.Sessions >= 0 || s.CPU >= 0
}

// Process reads a process's RSS and CPU time from /proc (Linux). With PID 0
// it reads the calling process and also counts its goroutines, for a server
// run in-process by a test or benchmark.
type Process struct {
	PID int
	// Sessions, if set, reports the server's open sessions.
	Sessions func() int
}

// Stats implements StatsReader.
func (p Process) Stats(context.Context) (Sample, error) {
	s := unknownSample()
	dir := "/proc/self"
	if p.PID != 0 {
		dir = "/proc/" + strconv.Itoa(p.PID)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("load: process stats: %w", err)
	}
	if s.RSS, err = statusKiB(status, "VmRSS:"); err != nil {
		return s, err
	}
	if p.PID == 0 {
		s.Goroutines = runtime.NumGoroutine()
		s.CPU = proccpu.Self()
	} else if stat, err := os.ReadFile(dir + "/stat"); err == nil {
		s.CPU = statCPU(stat)
	}
	if p.Sessions != nil {
		s.Sessions = p.Sessions()
	}
	return s, nil
}

// statusKiB reads a "Key:   1234 kB" line of /proc/<pid>/status as bytes.
func statusKiB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			break
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return n << 10, nil
	}
	return -1, fmt.Errorf("load: no %s line in /proc status", key)
}

// userHZ is the unit of /proc/<pid>/stat CPU times: USER_HZ, 100 on every
// Linux architecture Go supports.
const userHZ = 100

// statCPU returns utime+stime from /proc/<pid>/stat, or -1.
func statCPU(stat []byte) time.Duration {
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 { // utime and stime are fields 14 and 15: f[11], f[12]
		return -1
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * time.Second / userHZ
}

// peakSampler samples the server periodically and keeps the largest value
// of each field.
type peakSampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	peak   Sample
}

func newPeakSampler(ctx context.Context, stats StatsReader, every time.Duration) *peakSampler {
	p := &peakSampler{done: make(chan struct{}), peak: unknownSample()}
	if stats == nil {
		close(p.done)
		p.cancel = func() {}
		return p
	}
	ctx, p.cancel = context.WithCancel(ctx)
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if s, err := stats.Stats(ctx); err == nil {
				p.peak = maxSample(p.peak, s)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the peak.
func (p *peakSampler) stop() Sample {
	p.cancel()
	<-p.done
	return p.peak
}

func maxSample(a, b Sample) Sample {
	return Sample{
		RSS:        max(a.RSS, b.RSS),
		Goroutines: max(a.Goroutines, b.Goroutines),
		Sessions:   max(a.Sessions, b.Sessions),
		CPU:        max(a.CPU, b.CPU),
	}
}
