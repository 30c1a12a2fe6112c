package otp_test

import (
	"slices"
	"testing"

	"github.com/otplogin/otplogin/otp"
)

func TestClientKeys(t *testing.T) {
	for _, tc := range []struct {
		client string
		want   []string
	}{
		{"192.0.2.7", []string{"192.0.2.7"}},
		{"local", []string{"local"}},
		{"@sock", []string{"@sock"}},
		{"", []string{""}},
		{"::ffff:192.0.2.7", []string{"::ffff:192.0.2.7"}}, // IPv4, kept as given
		{"not:an:address", []string{"not:an:address"}},
		{"2001:db8::/129", []string{"2001:db8::/129"}},
		// serve's key for an IPv6 client: its /64.
		{"2001:db8:1:2::/64", []string{"2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48"}},
		{"2001:db8:1:2ff::/64", []string{"2001:db8:1:2ff::/64", "2001:db8:1:200::/56", "2001:db8:1::/48"}},
		// Other spellings of the same /64 get the same keys.
		{"2001:DB8:1:2:0::/64", []string{"2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48"}},
		{"2001:db8:1:2::5/64", []string{"2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48"}},
		{"2001:db8:1:2:3:4:5:6", []string{"2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48"}},
		{"2001:db8:1:2:3:4:5:6/128", []string{"2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48"}},
		{"fe80::1%eth0", []string{"fe80::/64", "fe80::/56", "fe80::/48"}},
		// Shorter prefixes: only the levels they contain.
		{"2001:db8:1:200::/56", []string{"2001:db8:1:200::/56", "2001:db8:1::/48"}},
		{"2001:db8:1:280::/60", []string{"2001:db8:1:200::/56", "2001:db8:1::/48"}},
		{"2001:db8:1::/48", []string{"2001:db8:1::/48"}},
		{"2001:db8::/32", []string{"2001:db8::/32"}},
	} {
		if got := otp.ClientKeys(tc.client); !slices.Equal(got, tc.want) {
			t.Errorf("ClientKeys(%q) = %q, want %q", tc.client, got, tc.want)
		}
	}
}

func TestClientScopes(t *testing.T) {
	lim := otp.Limits{
		ClientIssues: 1, ClientIssues56: 2, ClientIssues48: 3,
		ClientFailures: 4, ClientFailures56: 5, ClientFailures48: 6,
		ClientAddressIssues: 7,
	}
	at64 := otp.ClientScope{Key: "2001:db8:1:2::/64", Issues: 1, Failures: 4, AddressIssues: 7}
	at56 := otp.ClientScope{Key: "2001:db8:1::/56", Issues: 2, Failures: 5, AddressIssues: 7}
	at48 := otp.ClientScope{Key: "2001:db8:1::/48", Issues: 3, Failures: 6, AddressIssues: 7}
	for _, tc := range []struct {
		client string
		want   []otp.ClientScope
	}{
		{"192.0.2.7", []otp.ClientScope{{Key: "192.0.2.7", Issues: 1, Failures: 4, AddressIssues: 7}}},
		{"2001:db8:1:2::/64", []otp.ClientScope{at64, at56, at48}},
		{"2001:db8:1::/56", []otp.ClientScope{at56, at48}},
		// Wider than a /48: charged as one.
		{"2001:db8::/32", []otp.ClientScope{{Key: "2001:db8::/32", Issues: 3, Failures: 6, AddressIssues: 7}}},
	} {
		if got := lim.ClientScopes(tc.client); !slices.Equal(got, tc.want) {
			t.Errorf("ClientScopes(%q) = %+v\nwant %+v", tc.client, got, tc.want)
		}
	}
}
