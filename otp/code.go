package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
	"sync"
)

// pow10 holds 10^n for the code lengths New allows.
var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// newCode returns length uniformly random decimal digits from crypto/rand.
// A uint64 is drawn and redrawn while it falls in the last, partial run of
// 10^length values, so every code is exactly equally likely (no modulo bias);
// a redraw happens with probability below 1e-9.
func newCode(length int) string {
	n := pow10[length]
	limit := math.MaxUint64 - math.MaxUint64%n // values >= limit would bias
	var b [8]byte
	for {
		// crypto/rand.Read never fails (it crashes the program instead).
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v < limit {
			return formatCode(v%n, length)
		}
	}
}

// formatCode writes v as exactly length digits, zero-padded.
func formatCode(v uint64, length int) string {
	var buf [20]byte
	for i := length - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return string(buf[:length])
}

// hasher computes HMAC-SHA256(key, addressKey || 0x00 || code). The 0x00
// cannot occur in either part, so no two (address, code) pairs share an
// input. Keyed HMAC states are pooled: hmac.New hashes the key pads on every
// call, which would double the cost of Verify.
type hasher struct {
	pool sync.Pool
}

func newHasher(key []byte) *hasher {
	k := append([]byte(nil), key...)
	h := &hasher{}
	h.pool.New = func() any { return hmac.New(sha256.New, k) }
	return h
}

func (h *hasher) sum(addrKey, code string) []byte {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(addrKey))
	m.Write([]byte{0})
	m.Write([]byte(code))
	out := m.Sum(make([]byte, 0, sha256.Size))
	h.pool.Put(m)
	return out
}
