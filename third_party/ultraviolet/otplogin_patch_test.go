package uv

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// TestResizeReusesRowsEmpty checks the otplogin patch to Buffer.Resize
// (see the README in the parent folder): rows and cells regained after a
// shrink are empty, never what they held before, and a regrow within the
// capacity allocates nothing.
func TestResizeReusesRowsEmpty(t *testing.T) {
	b := NewBuffer(8, 4)
	full := Cell{Content: "x", Width: 1}
	b.Fill(&full)
	b.Resize(3, 2)
	b.Resize(8, 4)
	for y := range 4 {
		for x := range 8 {
			want := "x"
			if x >= 3 || y >= 2 {
				want = EmptyCell.Content
			}
			if got := b.CellAt(x, y).Content; got != want {
				t.Fatalf("cell (%d,%d) = %q after shrink and regrow, want %q", x, y, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { b.Resize(2, 1); b.Resize(8, 4) }); n != 0 {
		t.Errorf("shrink and regrow within capacity: %v allocations, want 0", n)
	}
}

// TestDecodeX10MouseReport checks the otplogin patch to the X10 mouse
// report in parseCsi: the three report bytes are read after the final byte
// whichever CSI introduced them. The 8-bit form used to be sliced as if it
// were ESC [ M and panicked: "\x9bM:]m" is five bytes, and an anonymous SSH
// visitor could send it (or a Windows-1252 terminal, where › is 0x9b).
func TestDecodeX10MouseReport(t *testing.T) {
	// ':' is button byte 26: right button with alt and ctrl; ']' and 'm'
	// are column 61 and row 77, 60 and 76 counted from zero.
	want := MouseClickEvent{X: 60, Y: 76, Button: MouseRight, Mod: ModAlt | ModCtrl}
	tests := []struct {
		name  string
		in    string
		wantN int
	}{
		{"8-bit CSI", "\x9bM:]m", 5},
		{"8-bit CSI, more input after", "\x9bM:]mx", 5},
		{"7-bit CSI", "\x1b[M:]m", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d EventDecoder
			n, ev := d.Decode([]byte(tt.in))
			if n != tt.wantN || ev != want {
				t.Errorf("Decode(%q) = %d, %#v; want %d, %#v", tt.in, n, ev, tt.wantN, want)
			}
		})
	}
	t.Run("terminal reader", func(t *testing.T) {
		got := testReadInputs(t, strings.NewReader("\x9bM:]m"))
		if len(got) != 1 || got[0] != want {
			t.Errorf("reading %q: events %#v, want [%#v]", "\x9bM:]m", got, want)
		}
	})
}

// TestScanManyParams checks the otplogin patch to deserializeWin32Input: the
// win32-input-mode scan that runs over every input buffer used
// ansi.DecodeSequence with a parser, which panics on a CSI parameter after
// the 32nd, so ESC [ followed by 32 semicolons and a digit ended the
// program. The parameters of a win32 key are now read by win32InputKey, and
// every other sequence is left to the decoder.
func TestScanManyParams(t *testing.T) {
	semis := strings.Repeat(";", 40)
	colons := strings.Repeat(":", 40)
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{
			"41 parameters",
			"\x1b[" + semis + "1x",
			[]Event{UnknownCsiEvent("\x1b[" + semis + "1x")},
		},
		{
			"8-bit CSI, 41 subparameters, then a win32 key",
			"\x9b" + colons + "7x" + "\x1b[0;0;97;1;0;1_",
			[]Event{
				UnknownCsiEvent("\x9b" + colons + "7x"),
				KeyPressEvent{Code: 'a', Text: "a"},
			},
		},
		{
			"a win32 key with 40 parameters",
			"\x1b[0;0;98;1" + strings.Repeat(";1", 36) + "_",
			[]Event{KeyPressEvent{Code: 'b', Text: "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testReadInputs(t, strings.NewReader(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("reading %q:\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

// TestDecodeManyParams checks the otplogin patch to the parameter scan of
// parseCsi and parseDcs: a sequence with more parameters than the decoder
// keeps is one sequence, not a cut-off one followed by its tail as typed
// text.
func TestDecodeManyParams(t *testing.T) {
	many := strings.Repeat("1;", 40) + "1"
	tests := []struct {
		in   string
		want Event
	}{
		{"\x1b[" + many + "x", UnknownCsiEvent("\x1b[" + many + "x")},
		{"\x9b" + many + "x", UnknownCsiEvent("\x9b" + many + "x")},
		{"\x1b[?" + many + "c", PrimaryDeviceAttributesEvent(slices.Repeat([]int{1}, 32))},
		{"\x1bP" + many + "x\x1b\\", UnknownDcsEvent("\x1bP" + many + "x\x1b\\")},
		{"\x90" + many + "x\x9c", UnknownDcsEvent("\x90" + many + "x\x9c")},
	}
	for _, tt := range tests {
		var d EventDecoder
		n, ev := d.Decode([]byte(tt.in))
		if n != len(tt.in) || !reflect.DeepEqual(ev, tt.want) {
			t.Errorf("Decode(%q) = %d, %#v; want %d, %#v", tt.in, n, ev, len(tt.in), tt.want)
		}
	}
}

// TestDecodeEscRun checks the otplogin patch to Decode for runs of ESC: the
// result is the one the recursion gave, and a run of a megabyte decodes on
// a small stack. The recursion needed about half a kilobyte of stack per
// ESC, so this test crashed with "goroutine stack exceeds" before.
func TestDecodeEscRun(t *testing.T) {
	tails := []string{"", "a", "A", "[A", "[", "[1;", "]11;x\x07", "]", "O", "OA", "P", "_", "^", "X",
		"\x9b", "\x00", "é", "[200~", "\x7f", " ", "\xff"}
	for run := 1; run <= 6; run++ {
		for _, tail := range tails {
			in := []byte(strings.Repeat("\x1b", run) + tail)
			var d, ref EventDecoder
			n, ev := d.Decode(in)
			wantN, want := recursiveEscDecode(&ref, in)
			if n != wantN || !reflect.DeepEqual(ev, want) {
				t.Errorf("Decode(%q) = %d, %#v; the recursion gave %d, %#v", in, n, ev, wantN, want)
			}
		}
	}

	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	in := append(bytes.Repeat([]byte{ansi.ESC}, 1<<20), '[')
	var d EventDecoder
	n, ev := d.Decode(in)
	if want := (KeyPressEvent{Code: '[', Mod: ModAlt}); n != len(in) || ev != want {
		t.Errorf("Decode(1 MiB of ESC, then [) = %d, %#v; want %d, %#v", n, ev, len(in), want)
	}
}

// recursiveEscDecode is Decode as it was for ESC followed by anything but
// the introducer of a sequence: one recursive call per ESC.
func recursiveEscDecode(d *EventDecoder, buf []byte) (int, Event) {
	if len(buf) < 2 || buf[0] != ansi.ESC || strings.IndexByte("OP[]_^X", buf[1]) >= 0 {
		return d.Decode(buf)
	}
	n, e := recursiveEscDecode(d, buf[1:])
	if k, ok := e.(KeyPressEvent); ok {
		k.Text = ""
		k.Mod |= ModAlt
		return n + 1, k
	}
	return 1, KeyPressEvent{Code: KeyEscape}
}

// TestDecodeWin32RepeatBound checks the otplogin patch to the win32 input
// mode repeat count: one sequence makes at most maxWin32Repeat events, where
// a count of 65535 made 65535.
func TestDecodeWin32RepeatBound(t *testing.T) {
	a := KeyPressEvent{Code: 'a', BaseCode: 'a', Text: "a"}
	tests := []struct {
		in   string
		want Event
	}{
		{"\x1b[65;0;97;1;0;1_", a},
		{"\x1b[65;0;97;1;0;0_", a},
		{"\x1b[65;0;97;1;0;3_", MultiEvent{a, a, a}},
		{"\x1b[65;0;97;1;0;65535_", MultiEvent(slices.Repeat([]Event{a}, maxWin32Repeat))},
		{"\x1b[65;0;97;1;0;99999999999_", MultiEvent(slices.Repeat([]Event{a}, maxWin32Repeat))},
	}
	for _, tt := range tests {
		var d EventDecoder
		n, ev := d.Decode([]byte(tt.in))
		if n != len(tt.in) || !reflect.DeepEqual(ev, tt.want) {
			t.Errorf("Decode(%q) = %d, %d events; want %d, %d events", tt.in, n, countEvents(ev), len(tt.in), countEvents(tt.want))
		}
	}
}

func countEvents(ev Event) int {
	if m, ok := ev.(MultiEvent); ok {
		return len(m)
	}
	return 1
}

// TestColorReportUnreadable checks the otplogin patch to the String and
// IsDark methods of the color events: a color report whose color cannot be
// read gives an event with a nil color, and those methods panicked on it.
// Programs call IsDark on the background color report.
func TestColorReportUnreadable(t *testing.T) {
	type colorEvent interface {
		String() string
		IsDark() bool
	}
	for _, in := range []string{"\x1b]10;junk\x07", "\x1b]11;junk\x07", "\x1b]12;junk\x07", "\x9d11A\x9c", "\x9d12;x\x9c"} {
		var d EventDecoder
		_, ev := d.Decode([]byte(in))
		c, ok := ev.(colorEvent)
		if !ok {
			t.Errorf("Decode(%q) = %#v, want a color event", in, ev)
			continue
		}
		if s, dark := c.String(), c.IsDark(); s != "" || !dark {
			t.Errorf("Decode(%q): String() = %q, IsDark() = %v; want \"\", true", in, s, dark)
		}
	}
}

// TestPendingSequenceBounded checks the otplogin patch to StreamEvents: an
// unterminated OSC sent a byte at a time is given up as soon as it passes
// MaxPendingBytes, without waiting for the escape timeout (an hour here),
// so the reader never rescans more than that on each read.
func TestPendingSequenceBounded(t *testing.T) {
	r, w := io.Pipe()
	tr := NewTerminalReader(r, "xterm-256color")
	tr.EscTimeout = time.Hour
	events := make(chan Event, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tr.StreamEvents(ctx, events) }()

	seq := append([]byte("\x1b]"), bytes.Repeat([]byte("x"), MaxPendingBytes+64)...)
	for i := range seq {
		if _, err := w.Write(seq[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-events:
		if _, ok := ev.(UnknownEvent); !ok {
			t.Errorf("first event %T %v, want the given-up sequence as an UnknownEvent", ev, ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unterminated sequence past MaxPendingBytes is still held")
	}
	cancel()
	_ = w.Close()
	<-done
}
