package mask

import "testing"

func TestAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "a***@example.com"},
		{"a@example.com", "a***@example.com"},
		{"émile@example.com", "***@example.com"},
		{"\x1b[31m@example.com", "***@example.com"},
		{"no-at-sign", "***"},
		{"@example.com", "***"},
		{"alice@", "***"},
		{"", "***"},
	} {
		if got := Address(tc.in); got != tc.want {
			t.Errorf("Address(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIn(t *testing.T) {
	got := In("550 5.1.1 <bob@example.com>: Recipient address rejected", "bob@example.com")
	want := "550 5.1.1 <b***@example.com>: Recipient address rejected"
	if got != want {
		t.Errorf("In = %q, want %q", got, want)
	}
	if got := In("nothing here", ""); got != "nothing here" {
		t.Errorf("In with empty addr = %q", got)
	}
}
