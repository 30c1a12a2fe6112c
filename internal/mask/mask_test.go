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
	for _, tc := range []struct{ s, addr, want string }{
		{"550 5.1.1 <bob@example.com>: Recipient address rejected", "bob@example.com",
			"550 5.1.1 <b***@example.com>: Recipient address rejected"},
		// Servers may echo the address in another case than they were sent.
		{"550 bob@example.com: user unknown; <BOB@EXAMPLE.COM>", "Bob@example.com",
			"550 B***@example.com: user unknown; <B***@example.com>"},
		// Invalid UTF-8 before the address must not shift the match.
		{"\xff\xfe <BOB@example.com> rejected", "bob@example.com", "\xff\xfe <b***@example.com> rejected"},
		{"nothing here", "bob@example.com", "nothing here"},
		{"nothing here", "", "nothing here"},
	} {
		if got := In(tc.s, tc.addr); got != tc.want {
			t.Errorf("In(%q, %q) = %q, want %q", tc.s, tc.addr, got, tc.want)
		}
	}
}
