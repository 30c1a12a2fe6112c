package serve

import (
	"io"
	"unicode/utf8"
)

// validUTF8 passes a session's input on with every byte that is not part
// of valid UTF-8 dropped. A terminal sends text as UTF-8, and its escape
// sequences are ASCII; what is left out is what no UTF-8 terminal sends:
// lone bytes 0x80-0xFF, among them the 8-bit C1 controls (0x9B is CSI,
// 0x9D OSC, 0x90 DCS) that a Windows-1252 terminal sends for "›" and
// friends. The released ultraviolet decoder panics on some of those
// (third_party/README.md, ultraviolet patch 3), and the released bubbletea
// does not recover its input goroutine, so for a program that imports this
// package with the released versions this filter is what keeps a visitor
// from ending the process; with the patched copies it is one more layer.
type validUTF8 struct {
	r       io.Reader
	pending [utf8.UTFMax - 1]byte // the start of a rune a read cut off
	n       int                   // bytes in pending
}

func (v *validUTF8) Read(p []byte) (int, error) {
	if len(p) <= v.n {
		// Too small to hold what is pending and move on; a terminal
		// reader never asks for so little.
		return 0, io.ErrShortBuffer
	}
	for {
		copy(p, v.pending[:v.n])
		n, err := v.r.Read(p[v.n:])
		n += v.n
		v.n = 0
		out := 0
		for i := 0; i < n; {
			b := p[i]
			if b < utf8.RuneSelf {
				p[out] = b
				out, i = out+1, i+1
				continue
			}
			if !utf8.FullRune(p[i:n]) && err == nil {
				// The rest of a rune may come with the next read.
				v.n = copy(v.pending[:], p[i:n])
				break
			}
			r, size := utf8.DecodeRune(p[i:n])
			if r == utf8.RuneError && size <= 1 {
				i++ // not UTF-8: dropped
				continue
			}
			copy(p[out:], p[i:i+size])
			out, i = out+size, i+size
		}
		// A read that held only dropped bytes returns nothing: read again
		// rather than return 0 and nil, which io.Reader discourages.
		if out > 0 || err != nil {
			return out, err
		}
	}
}
