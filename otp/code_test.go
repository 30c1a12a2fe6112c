package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// helperCodes is how many codes TestHelperProcess prints.
const helperCodes = 8

// TestHelperProcess is not a test: TestCodesDifferAcrossProcesses runs the
// test binary again with only this, and reads the codes it prints.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("OTPLOGIN_PRINT_CODES") != "1" {
		t.Skip("runs only as TestCodesDifferAcrossProcesses's child")
	}
	for range helperCodes {
		fmt.Println(newCode(maxCodeLength))
	}
}

// TestCodesDifferAcrossProcesses: a generator seeded with anything fixed
// (math/rand with a constant seed) passes every distribution test, but
// draws the same codes in every process. Two fresh processes must not.
func TestCodesDifferAcrossProcesses(t *testing.T) {
	draw := func() []string {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "OTPLOGIN_PRINT_CODES=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper process: %v\n%s", err, out)
		}
		var codes []string
		for _, line := range strings.Fields(string(out)) {
			if _, err := ParseCode(line, maxCodeLength); err == nil {
				codes = append(codes, line)
			}
		}
		if len(codes) != helperCodes {
			t.Fatalf("helper process printed %d codes, want %d:\n%s", len(codes), helperCodes, out)
		}
		return codes
	}
	a, b := draw(), draw()
	if slices.Equal(a, b) {
		t.Fatalf("two processes drew the same %d codes %q: the generator is seeded with something fixed", helperCodes, a)
	}
}

// TestNoMathRand bans math/rand and math/rand/v2 from the non-test files
// of otp and its subpackages: codes must come from crypto/rand, and a
// math/rand generator seeded at random passes every other test here. A
// test rather than a linter rule, so it runs wherever go test does.
func TestNoMathRand(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "testdata":
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "math/rand" || p == "math/rand/v2" {
				t.Errorf("%s imports %s; otp draws codes from crypto/rand only", fset.Position(imp.Pos()), p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked %d files; is the test running in otp's directory?", checked)
	}
}
