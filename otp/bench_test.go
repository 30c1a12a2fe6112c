package otp_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/otp"
)

// batch is how many codes a benchmark issues outside the timer at a time;
// between batches the clock jumps 2 hours so every window and code from the
// last batch is stale and the store sweeps it, keeping memory flat.
const batch = 10_000

func benchAddrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("user%06d@example.com", i)
	}
	return a
}

// benchEnv is a Service whose limits let one benchmark issue batch codes
// per 2 hours of fake time.
func benchEnv(b *testing.B) (*otp.Service, *fakeclock.Clock, *recorder) {
	clk, snd := newClock(), &recorder{}
	lim := otp.DefaultLimits()
	lim.MaxAttempts, lim.FailureBudget = 10, 100
	lim.ClientIssues, lim.MaxPending = 100_000, 1_000_000
	lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour = 100_000, 100_000_000
	svc, err := otp.New(otp.Config{Key: make([]byte, 32), Now: clk.Now, Limits: lim}, otp.NewMemoryStore(), snd)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Close() })
	return svc, clk, snd
}

// issueAll requests a code for every address and returns them in order.
func issueAll(b *testing.B, svc *otp.Service, clk *fakeclock.Clock, snd *recorder, addrs []string) []string {
	clk.Advance(2 * time.Hour)
	snd.mu.Lock()
	snd.msgs = snd.msgs[:0]
	snd.mu.Unlock()
	for _, a := range addrs {
		if _, err := svc.Request(b.Context(), a, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	codes := make([]string, len(addrs))
	for i, m := range snd.msgs {
		codes[i] = m.Code
	}
	return codes
}

func BenchmarkVerifyHit(b *testing.B) {
	svc, clk, snd := benchEnv(b)
	addrs := benchAddrs(batch)
	var codes []string
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % batch
		if j == 0 {
			b.StopTimer()
			codes = issueAll(b, svc, clk, snd, addrs)
			b.StartTimer()
		}
		if err := svc.Verify(b.Context(), addrs[j], "bench", codes[j]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMiss(b *testing.B) {
	svc, clk, snd := benchEnv(b)
	const perCode = 10 // MaxAttempts in benchEnv
	addrs := benchAddrs(batch / perCode)
	var guesses []string
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % batch
		if j == 0 {
			b.StopTimer()
			guesses = issueAll(b, svc, clk, snd, addrs)
			for k := range guesses {
				guesses[k] = wrong(guesses[k])
			}
			b.StartTimer()
		}
		k := j % len(addrs)
		if err := svc.Verify(b.Context(), addrs[k], "bench", guesses[k]); err == nil {
			b.Fatal("a wrong code verified")
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	svc, clk, _ := benchEnv(b)
	addrs := benchAddrs(batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % batch
		if j == 0 {
			clk.Advance(2 * time.Hour) // the sweep that follows is timed: it is part of Request's cost
		}
		if _, err := svc.Request(b.Context(), addrs[j], "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is the least work any Verify must do: one HMAC-SHA256 with
// the keyed state reused (as the Service does) and one lookup in a map of
// pending codes. Compare its ns/op with BenchmarkVerify*.
func BenchmarkFloor(b *testing.B) {
	addrs := benchAddrs(batch)
	m := make(map[string]*[32]byte, len(addrs))
	for _, a := range addrs {
		m[a] = new([32]byte)
	}
	mac := hmac.New(sha256.New, make([]byte, 32))
	out := make([]byte, 0, sha256.Size)
	code := []byte("123456")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		a := addrs[i%len(addrs)]
		mac.Reset()
		mac.Write([]byte(a))
		mac.Write([]byte{0})
		mac.Write(code)
		sum := mac.Sum(out[:0])
		if p := m[a]; p == nil || hmac.Equal(p[:], sum) {
			b.Fatal("unexpected")
		}
	}
}

// BenchmarkPendingMemory reports the heap bytes the memory store holds per
// pending code, beyond the address string itself, with 100k codes pending.
func BenchmarkPendingMemory(b *testing.B) {
	const n = 100_000
	addrs := benchAddrs(n)
	lim := otp.DefaultLimits()
	lim.ClientIssues, lim.MaxPending = n, n
	lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour = n, n
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p := otp.Pending{Hash: make([]byte, 32), IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), ResendAt: now.Add(time.Minute)}
	var perCode float64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := otp.NewMemoryStore()
		for _, a := range addrs {
			if _, err := s.Issue(b.Context(), a, "bench", p, now, lim); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		perCode = float64(after.HeapAlloc-before.HeapAlloc) / n
	}
	b.ReportMetric(perCode, "bytes/pending")
}
