package uv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// The fuzz targets in this file feed arbitrary bytes through the input path
// the way a program reads a terminal, to prove the otplogin requirement that
// no input, however hostile, panics or stalls the decoder (see the
// ultraviolet section of ../README.md). Run one with, for example,
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5m -parallel 1 .

// fuzzHangLimit is how long one input may take before the fuzz worker is
// made to crash, so that the fuzzer records an input that loops forever
// instead of hanging.
const fuzzHangLimit = 10 * time.Second

// maxStreamInput is the largest input the stream targets take. The
// scanner scans the whole of a buffer it is waiting on again after every
// read, so an input cut into one-byte reads costs the square of its length,
// and larger inputs would leave the fuzzer minimizing slow inputs instead
// of exploring. FuzzDecode takes inputs of any size.
const maxStreamInput = 8 << 10

// failAfter crashes the process if stop is not called within d. A panic in
// a goroutine of its own cannot be recovered by the code under test, so the
// fuzzer sees the crash and keeps the input that was running.
func failAfter(d time.Duration, what string) (stop func() bool) {
	return time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: still running after %v", what, d))
	}).Stop
}

// decoderSeeds are inputs that reach every branch of the decoder: C1
// controls, 7-bit and 8-bit introducers, truncated and over-long sequences,
// every mouse encoding, kitty keyboard reports, bracketed paste, invalid
// UTF-8, NUL bytes and the five bytes of the 8-bit X10 report that used to
// panic.
func decoderSeeds() []string {
	seeds := []string{
		"\x9bM:]m", // 8-bit CSI X10 mouse report: the panic of issue 12
		"\x9bM:]", "\x9bM", "\x9bM:]mx",
		// 8-bit CSI, SS3, OSC, DCS, APC, SOS and PM forms.
		"\x9b1;5A", "\x9bA", "\x9b200~", "\x9b201~", "\x9b?1;2c", "\x9b>1;2c",
		"\x8fA", "\x8f5P",
		"\x9d11;rgb:ffff/0000/0000\x9c", "\x9d10;#ff0000\x07", "\x9d52;c;aGk=\x9c",
		"\x90>|xterm(390)\x9c", "\x901+r524742\x9c", "\x90!|00000000\x9c",
		"\x9fGi=1;OK\x9c", "\x98sos\x9c", "\x9epm\x9c",
		// 7-bit forms.
		"\x1b]11;rgb:1a1a/1a1a/1a1a\x1b\\", "\x1b]10;rgb:ffff/ffff/ffff\x07",
		"\x1b]12;#00ff00\x07", "\x1b]52;c;aGVsbG8=\x07", "\x1b]52;;\x07",
		"\x1b]7501;?\x1b\\", "\x1b]7501;\x07", "\x1b]4;1;rgb:00/00/00\x07",
		"\x1bP>|xterm(390)\x1b\\", "\x1bP1+r524742=1b5b\x1b\\", "\x1bP0+r\x1b\\",
		"\x1bP!|00000000\x1b\\", "\x1bP!|zz\x1b\\",
		"\x1b_Gi=31;OK\x1b\\", "\x1b_G\x1b\\", "\x1b_\x1b\\", "\x1bXsos\x1b\\", "\x1b^pm\x1b\\",
		"\x1b[I", "\x1b[O", // focus
		"\x1b[?2026;2$y", "\x1b[4;1$y", "\x1b[?1$y", // mode reports
		"\x1b[?62;22c", "\x1b[>1;10;0c", "\x1b[?1u", "\x1b[?15u",
		"\x1b[?997;1n", "\x1b[?997;2n", "\x1b[>4;2m",
		"\x1b[?12;40R", "\x1b[1;5R", "\x1b[12;40R", "\x1b[R",
		"\x1b[4;100;200t", "\x1b[6;16;8t", "\x1b[8;24;80t", "\x1b[48;24;80;480;640t", "\x1b[22;0;0t",
		"\x1b[27;5;9~", "\x1b[2$", "\x1b[3^", "\x1b[3@", "\x1b[1;5A", "\x1b[1;1:3A", "\x1b[3;5:3~",
		"\x1bOA", "\x1bO5P", "\x1bO", "\x1b[", "\x1b]", "\x1bP", "\x1b_", "\x1bX", "\x1b^",
		// Truncated and over-long sequences.
		"\x1b[1;", "\x1b[<0;10", "\x1b]11;rgb:", "\x1bP+r", "\x1bP>|", "\x1b_Gi=1",
		"\x1b]" + strings.Repeat("a", 5000) + "\x07",
		"\x1bP>|" + strings.Repeat("v", 5000) + "\x1b\\",
		"\x1b_G" + strings.Repeat("p", 5000),
		"\x1b[" + strings.Repeat(";", 40) + "1_",
		"\x1b[" + strings.Repeat("1;", 40) + "1u",
		"\x9b" + strings.Repeat(":", 40) + "7u",
		"\x1b[" + strings.Repeat("9", 40) + "u",
		"\x1b]" + strings.Repeat("9", 40) + ";x\x07",
		// Mouse: X10, SGR (1006) and URXVT (1015), 7-bit and 8-bit,
		// truncated.
		"\x1b[M !!", "\x1b[M", "\x1b[M ", "\x1b[M !", "\x9bM !!", "\x9bM ", "\x1b[1M!!!",
		"\x1b[<0;10;20M", "\x1b[<0;10;20m", "\x1b[<64;1;1M", "\x1b[<35;1;1M", "\x9b<0;10;20M",
		"\x1b[<0;99999999999999999999;1M", "\x1b[<;;M",
		"\x1b[32;10;20M", "\x9b32;10;20M", "\x1b[32;10",
		// Kitty keyboard reports.
		"\x1b[97u", "\x1b[97;2u", "\x1b[97:65:97;2:3;65:66:67u", "\x1b[57399;129u",
		"\x1b[1114112u", "\x1b[0u", "\x1b[;;u", "\x1b[97;1:2u",
		"\x1b[" + strings.Repeat("1:2:3:4;", 20) + "u",
		// Win32 input mode, including UTF-16 halves and a repeat count.
		"\x1b[65;0;97;1;0;1_", "\x1b[0;0;55357;1;0;1_\x1b[0;0;56835;1;0;1_",
		"\x1b[0;0;55357;0;0;1_", "\x1b[27;0;27;1;0;1_abc", "\x1b[0;0;97;0;0;1_",
		"\x1b[65;0;97;1;0;3_",
		// Bracketed paste: no end, nested, huge.
		"\x1b[200~hello", "\x1b[200~a\x1b[200~b\x1b[201~c\x1b[201~",
		"\x1b[200~" + strings.Repeat("x\x1b[A\xff", 1000) + "\x1b[201~",
		"\x1b[201~", "\x1b[200~\x1b", "\x1b[200~\x1b[",
		// Invalid UTF-8, NUL bytes, lone escapes.
		"\xff\xfe", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xef\xbf\xbd",
		"e\u0301", "👍🏽", "\x00", "\x1b\x00", "\x1b[\x001A", "\x00\x00\x00",
		"\x1b", "\x1b\x1b", "\x1b\x1b\x1b[A", strings.Repeat("\x1b", 100), "\x1ba", "\x1b\x9b",
	}
	// Every C1 control alone, and followed by bytes that make each one a
	// plausible sequence introducer.
	for c := 0x80; c <= 0x9f; c++ {
		seeds = append(seeds, string([]byte{byte(c)}), string([]byte{byte(c), 'M', ':', ']', 'm'}),
			string([]byte{byte(c), '1', ';', '2', 'x', 0x9c}), string([]byte{byte(c), 0x1b, '\\'}))
	}
	for seq := range sequences { // the key sequences of key_test.go
		seeds = append(seeds, seq)
	}
	return seeds
}

// FuzzDecode decodes a buffer the way the terminal reader does, calling
// EventDecoder.Decode on what is left until nothing is, and checks that each
// call consumes at least one byte and no more than it was given, returns an
// event, leaves the buffer as it was, and that every event can be printed.
func FuzzDecode(f *testing.F) {
	for _, s := range decoderSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer failAfter(fuzzHangLimit, "FuzzDecode")()
		orig := bytes.Clone(data)
		var d EventDecoder
		for buf := data; len(buf) > 0; {
			n, ev := d.Decode(buf)
			if n <= 0 || n > len(buf) {
				t.Fatalf("Decode(%q) consumed %d bytes", buf, n)
			}
			if ev == nil {
				t.Fatalf("Decode(%q) returned no event", buf[:n])
			}
			printEvent(ev)
			buf = buf[n:]
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("Decode changed its input %q to %q", orig, data)
		}
	})
}

// FuzzScanEvents runs the scanner of the terminal reader over data cut into
// the chunks that cuts describes (each byte is the length of the next chunk,
// less one, with bit 7 meaning the escape timeout expires after it), with the
// loop of TerminalReader.StreamEvents and Terminal: scan after each chunk,
// keep what was not consumed, and at the end scan with the timeout expired
// until nothing is left. Every expired scan of a non-empty buffer must
// consume something.
func FuzzScanEvents(f *testing.F) {
	for _, s := range decoderSeeds() {
		f.Add([]byte(s), []byte{0x03, 0x81, 0x7f})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > maxStreamInput {
			t.Skip()
		}
		defer failAfter(fuzzHangLimit, "FuzzScanEvents")()
		sc := NewTerminalReader(nil, "xterm-256color").eventScanner
		var buf []byte
		scan := func(expired bool) {
			n, events := sc.scanEvents(buf, expired)
			if n < 0 {
				t.Fatalf("scanEvents(%q, %v) consumed %d bytes", buf, expired, n)
			}
			if expired && n == 0 && len(buf) > 0 {
				t.Fatalf("scanEvents(%q, expired) consumed nothing", buf)
			}
			for _, ev := range events {
				if ev == nil {
					t.Fatalf("scanEvents(%q) returned a nil event", buf)
				}
				printEvent(ev)
			}
			buf = buf[min(n, len(buf)):] // as both callers do
		}
		for i, rest := 0, data; len(rest) > 0; i++ {
			size, expire := 1+len(rest), false
			if len(cuts) > 0 {
				c := cuts[i%len(cuts)]
				size, expire = 1+int(c&0x7f), c&0x80 != 0
			}
			size = min(size, len(rest))
			buf = append(buf, rest[:size]...)
			rest = rest[size:]
			scan(false)
			if expire && len(buf) > 0 {
				scan(true)
			}
		}
		for len(buf) > 0 {
			scan(true)
		}
	})
}

// FuzzTerminalReader streams data through a real TerminalReader from a
// reader that returns it in the chunk sizes cuts describes, and checks that
// StreamEvents ends when the input does and sends only real events.
func FuzzTerminalReader(f *testing.F) {
	for _, s := range decoderSeeds() {
		f.Add([]byte(s), []byte{0x02, 0x00, 0x40})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > maxStreamInput {
			t.Skip()
		}
		defer failAfter(fuzzHangLimit, "FuzzTerminalReader")()
		r := NewTerminalReader(&chunkReader{data: data, cuts: cuts}, "xterm-256color")
		eventc := make(chan Event)
		errc := make(chan error, 1)
		go func() {
			errc <- r.StreamEvents(context.Background(), eventc)
			close(eventc)
		}()
		for ev := range eventc {
			if ev == nil {
				t.Fatalf("reading %q: a nil event", data)
			}
			printEvent(ev)
		}
		if err := <-errc; err != nil {
			t.Fatalf("reading %q: %v", data, err)
		}
	})
}

// printEvent calls the String and Keystroke methods of ev and of the events
// inside it, as a program matching keys does. fmt would hide a panic in
// them, so they are called directly.
func printEvent(ev Event) {
	if m, ok := ev.(MultiEvent); ok {
		for _, e := range m {
			printEvent(e)
		}
	}
	if s, ok := ev.(fmt.Stringer); ok {
		_ = s.String()
	}
	if k, ok := ev.(interface{ Keystroke() string }); ok {
		_ = k.Keystroke()
	}
}

// chunkReader returns data in chunks of 1+cuts[i] bytes, cycling through
// cuts, or all at once when cuts is empty.
type chunkReader struct {
	data []byte
	cuts []byte
	i    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := len(r.data)
	if len(r.cuts) > 0 {
		size = 1 + int(r.cuts[r.i%len(r.cuts)])
		r.i++
	}
	n := copy(p, r.data[:min(size, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}
