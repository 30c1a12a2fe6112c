package uv

import "testing"

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
