package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
)

// benchStores gives each benchmark the memory store next to the Redis
// ones, one server and a Cluster of three masters, so one run shows all.
func benchStores(b *testing.B, run func(b *testing.B, store otp.Store)) {
	b.Run("store=memory", func(b *testing.B) { run(b, otp.NewMemoryStore()) })
	// -count runs each sub-benchmark again with the same name and b.N: a
	// prefix of its own per run keeps it from finding the last run's codes.
	var runs atomic.Int64
	for _, d := range []struct {
		name string
		url  func() string
	}{
		{"redis", func() string { return redistest.Start(b).URL() }},
		{"cluster", func() string { return redistest.StartCluster(b, 3, 0).URL() }},
	} {
		url := d.url()
		b.Run("store="+d.name, func(b *testing.B) {
			s, err := Open(b.Context(), url, Options{Prefix: fmt.Sprintf("bench:%d:", runs.Add(1)), Secret: sharedKey})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run(b, s)
		})
	}
}

// benchService is a Service whose limits let b.N distinct addresses and
// clients through, at any rate.
func benchService(b *testing.B, store otp.Store, mail otp.Sender) *otp.Service {
	lim := otp.DefaultLimits()
	lim.MaxPending = 10_000_000
	lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour = 100_000, 100_000_000
	s, err := otp.New(otp.Config{Key: sharedKey, Limits: lim}, store, mail)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkRequest: one code issued (one Issue script) and handed to a
// sender that keeps it in memory.
func BenchmarkRequest(b *testing.B) {
	benchStores(b, func(b *testing.B, store otp.Store) {
		svc := benchService(b, store, &recorder{})
		ctx := b.Context()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := svc.Request(ctx, fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerify: one right code verified (Attempt and Consume scripts);
// the codes are issued before the timer starts.
func BenchmarkVerify(b *testing.B) {
	benchStores(b, func(b *testing.B, store otp.Store) {
		mail := &recorder{}
		svc := benchService(b, store, mail)
		ctx := b.Context()
		addrs := make([]string, b.N)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("u%d@example.com", i)
			if _, err := svc.Request(ctx, addrs[i], fmt.Sprint("c", i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i, addr := range addrs {
			if err := svc.Verify(ctx, addr, fmt.Sprint("c", i), mail.codes[addr]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyMiss: one wrong guess (one Attempt script), as a guessing
// attacker costs the store.
func BenchmarkVerifyMiss(b *testing.B) {
	benchStores(b, func(b *testing.B, store otp.Store) {
		mail := &recorder{}
		svc := benchService(b, store, mail)
		ctx := b.Context()
		const perCode = 5 // MaxAttempts
		addrs := make([]string, b.N/perCode+1)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("u%d@example.com", i)
			if _, err := svc.Request(ctx, addrs[i], fmt.Sprint("c", i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			addr := addrs[i/perCode]
			if err := svc.Verify(ctx, addr, "guesser", wrong(mail.codes[addr])); err == nil {
				b.Fatal("a wrong code verified")
			}
		}
	})
}

// BenchmarkRequestParallel: Requests from many sessions at once, as a busy
// replica makes them; Redis pipelines nothing, so this shows how far the
// connection pool carries past one round trip at a time.
func BenchmarkRequestParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, store otp.Store) {
		svc := benchService(b, store, &recorder{})
		ctx := b.Context()
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				if _, err := svc.Request(ctx, fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
