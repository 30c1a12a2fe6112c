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

// newCode returns length uniformly random decimal digits from crypto/rand.
func newCode(length int) string {
	// crypto/rand.Read never fails (it crashes the program instead).
	return drawCode(func(b []byte) { _, _ = rand.Read(b) }, length)
}

// drawCode reads a uint64 and redraws while it falls in the last, partial
// run of 10^length values, so every code is exactly equally likely (no
// modulo bias); a redraw happens with probability below 1e-9.
func drawCode(read func([]byte), length int) string {
	n := uint64(1)
	for range length {
		n *= 10
	}
	limit := math.MaxUint64 - math.MaxUint64%n // values >= limit would bias
	var b [8]byte
	for {
		read(b[:])
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
// input. Keyed HMAC states are pooled with a scratch buffer: hmac.New hashes
// the key pads on every call, and converting the strings would allocate.
type hasher struct {
	pool sync.Pool // of *macState
}

type macState struct {
	mac hash.Hash
	buf []byte
	out [sha256.Size]byte
}

func newHasher(key []byte) *hasher {
	k := append([]byte(nil), key...)
	h := &hasher{}
	h.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, k)} }
	return h
}

// sum returns the MAC of (addrKey, code) in a new slice.
func (h *hasher) sum(addrKey string, code []byte) []byte {
	m := h.mac(addrKey, code)
	out := append([]byte(nil), m.out[:]...)
	h.pool.Put(m)
	return out
}

// equal reports in constant time whether want is the MAC of (addrKey, code).
func (h *hasher) equal(want []byte, addrKey string, code []byte) bool {
	m := h.mac(addrKey, code)
	eq := hmac.Equal(m.out[:], want)
	h.pool.Put(m)
	return eq
}

// mac leaves the MAC in the returned state's out; the caller puts it back.
func (h *hasher) mac(addrKey string, code []byte) *macState {
	m := h.pool.Get().(*macState)
	m.buf = append(append(append(m.buf[:0], addrKey...), 0), code...)
	m.sum()
	return m
}

// sum computes the MAC of buf into out.
func (m *macState) sum() {
	m.mac.Reset()
	m.mac.Write(m.buf)
	m.mac.Sum(m.out[:0])
}
