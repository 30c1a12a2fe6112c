package ui

import (
	"runtime"
	"strconv"
	"testing"
	"unsafe"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

// BenchmarkIdleModel measures what one idle session's model holds: New, a
// window size, held as the Program holds it. heap-B/model is the live heap
// per model with b.N models alive.
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

// BenchmarkView is the cost of one frame on each screen; stock Bubble Tea
// calls View after every message of a login.
func BenchmarkView(b *testing.B) {
	for _, sc := range []struct {
		name string
		to   func(d *driver, e *env)
	}{
		{"email", func(d *driver, _ *env) { d.typ("alice@exam") }},
		{"sending", func(d *driver, _ *env) { d.typ(alice); _ = d.update(enter) }},
		{"code", func(d *driver, _ *env) { d.toCode(); d.typ("123") }},
		{"done", func(d *driver, e *env) { d.toCode(); d.typ(e.sender.code(d.t, alice)); d.send(enter) }},
	} {
		b.Run(sc.name, func(b *testing.B) {
			e := newEnv(b, otp.Config{})
			d := newDriver(b, e.options(Options{Remote: true, Client: "192.0.2.1"}))
			sc.to(d, e)
			b.ReportAllocs()
			for b.Loop() {
				_ = d.m.View()
			}
		})
	}
}

// BenchmarkLogin is the ui's CPU for one whole login driven the way a
// Program drives it, a View after every message: the size and background
// reports, the address typed key by key, the code typed, the answers.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, otp.Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		addr := "u" + strconv.Itoa(i) + "@example.com"
		d := newDriver(b, e.options(Options{Remote: true, Client: strconv.Itoa(i)}))
		d.draw = true
		d.send(tea.BackgroundColorMsg{Color: ansiBlack{}})
		d.typ(addr)
		d.send(enter)
		d.typ(e.sender.code(b, addr))
		d.send(enter)
		if d.m.on != ScreenVerified {
			b.Fatalf("login %d ended on screen %q", i, d.m.on)
		}
	}
}
