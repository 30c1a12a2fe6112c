package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// chiSquareLimit for 9 degrees of freedom: P(X > 60) = 1.3e-9, so six
// positions fail a fair generator with probability below 1e-8.
const chiSquareLimit = 60

// positionChiSquare draws n codes and returns, per digit position, the
// chi-square statistic of the digit counts against uniform.
func positionChiSquare(n, length int, gen func() string) []float64 {
	counts := make([][10]int, length)
	for range n {
		c := gen()
		for i := range length {
			counts[i][c[i]-'0']++
		}
	}
	exp := float64(n) / 10
	stats := make([]float64, length)
	for i := range counts {
		for _, o := range counts[i] {
			d := float64(o) - exp
			stats[i] += d * d / exp
		}
	}
	return stats
}

func TestCodesUniform(t *testing.T) {
	const draws = 200_000
	for i, x := range positionChiSquare(draws, 6, func() string { return newCode(6) }) {
		if x > chiSquareLimit {
			t.Errorf("digit %d: chi-square %.1f > %d over %d codes", i, x, chiSquareLimit, draws)
		}
	}
}

// TestChiSquareCatchesBias shows the uniformity test can fail: a generator
// that picks '0' 20% more often than fair is caught.
func TestChiSquareCatchesBias(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	biased := func() string {
		b := make([]byte, 6)
		for i := range b {
			if r.IntN(50) == 0 { // +2% absolute, i.e. 1.2x for '0'
				b[i] = '0'
			} else {
				b[i] = byte('0' + r.IntN(10))
			}
		}
		return string(b)
	}
	caught := 0
	for _, x := range positionChiSquare(200_000, 6, biased) {
		if x > chiSquareLimit {
			caught++
		}
	}
	if caught != 6 {
		t.Fatalf("a 1.2x bias was caught at %d of 6 positions", caught)
	}
}

func TestCodeFormat(t *testing.T) {
	for _, tc := range []struct {
		v      uint64
		length int
		want   string
	}{
		{0, 6, "000000"}, {42, 6, "000042"}, {999999, 6, "999999"}, {7, 10, "0000000007"}, {9999999999, 10, "9999999999"},
	} {
		if got := formatCode(tc.v, tc.length); got != tc.want {
			t.Errorf("formatCode(%d, %d) = %q, want %q", tc.v, tc.length, got, tc.want)
		}
	}
	for length := minCodeLength; length <= maxCodeLength; length++ {
		if c := newCode(length); len(c) != length {
			t.Errorf("newCode(%d) = %q", length, c)
		}
	}
}

func TestDrawCodeRejectsBiasedTail(t *testing.T) {
	// The first draw is in the partial run above the last multiple of 10^6
	// and must be redrawn; the second is 42.
	draws := []uint64{math.MaxUint64, math.MaxUint64 - math.MaxUint64%1_000_000, 42}
	read := func(b []byte) {
		binary.LittleEndian.PutUint64(b, draws[0])
		draws = draws[1:]
	}
	if got := drawCode(read, 6); got != "000042" || len(draws) != 0 {
		t.Fatalf("drawCode = %q with %d draws left, want 000042 after two redraws", got, len(draws))
	}
}

func TestHashIsHMACOfKeyedInput(t *testing.T) {
	key := []byte("0123456789abcdef")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("alice@example.com\x00123456"))
	want := m.Sum(nil)
	h := newHasher(key)
	for range 3 { // pooled states must reset between uses
		if got := h.sum("alice@example.com", []byte("123456")); !hmac.Equal(got, want) || !h.equal(want, "alice@example.com", []byte("123456")) {
			t.Fatalf("sum = %x, want %x", got, want)
		}
	}
	if h.equal(want, "alice@example.com1", []byte("23456")) || h.equal(want, "alice@example.com", []byte("123457")) {
		t.Fatal("address/code boundary is ambiguous")
	}
}
