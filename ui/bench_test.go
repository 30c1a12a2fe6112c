package ui

import (
	"runtime"
	"testing"
	"unsafe"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// BenchmarkIdleModel measures what one idle session's model holds: New, a
// window size, boxed in a tea.Model as the Program keeps it. heap-B/model
// is the live heap per model with b.N models alive.
func BenchmarkIdleModel(b *testing.B) {
	e := newEnv(b, otp.Config{})
	opts := e.options(Options{Remote: true, Client: "192.0.2.1"})
	models := make([]tea.Model, b.N)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range models {
		m, _ := New(opts).Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		models[i] = m
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/model")
	b.ReportMetric(float64(unsafe.Sizeof(Model{})), "struct-B")
	runtime.KeepAlive(models)
}

// BenchmarkView is the cost of one frame of the code screen.
func BenchmarkView(b *testing.B) {
	e := newEnv(b, otp.Config{})
	d := newDriver(b, e.options(Options{}))
	d.toCode()
	b.ReportAllocs()
	for b.Loop() {
		_ = d.m.View()
	}
}
