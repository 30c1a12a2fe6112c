package otp

import (
	"net/netip"
	"strings"
)

// IPv6 prefix lengths a client is counted at. One host or LAN usually owns a
// /64, one home or small site a /56, and one site (or a free tunnel-broker
// allocation) a /48, so counting only the /64 would give a /48 holder 65,536
// fresh budgets.
const (
	clientBits = 64
	siteBits   = 56
	blockBits  = 48
)

// maxScopes is the most keys a client is counted under.
const maxScopes = 3

// ClientKeys returns the keys a client is counted under for per-client
// limits, narrowest first. An IPv6 client (an address, or a prefix such as
// serve's "2001:db8:1:2::/64") is counted at its /64, /56 and /48, each a
// canonical prefix string ("2001:db8:1:2::/64", "2001:db8:1::/56",
// "2001:db8:1::/48"); a prefix shorter than /64 only at the levels it
// contains, and one shorter than /48 as itself. Anything else (an IPv4
// address, "local", a Unix socket name, text that does not parse) is
// returned as the only key, unchanged.
//
// Limiters outside this package (serve's connection and session caps) use it
// to count clients the same way.
func ClientKeys(client string) []string {
	var buf [maxScopes]scopeKey
	keys := clientKeys(client, &buf)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out
}

// scopeKey is one key a client is counted under and the prefix length it
// stands for (0 for a client that is not IPv6).
type scopeKey struct {
	key  string
	bits int
}

// clientKeys fills buf with client's keys. It allocates only for IPv6
// clients: every IPv6 text contains a colon, no IPv4 address or "local" does.
func clientKeys(client string, buf *[maxScopes]scopeKey) []scopeKey {
	if strings.IndexByte(client, ':') < 0 {
		buf[0] = scopeKey{client, 0}
		return buf[:1]
	}
	p, ok := parseV6(client)
	if !ok {
		buf[0] = scopeKey{client, 0}
		return buf[:1]
	}
	n := 0
	for _, bits := range [...]int{clientBits, siteBits, blockBits} {
		if bits <= p.Bits() {
			q, _ := p.Addr().Prefix(bits)
			buf[n] = scopeKey{q.String(), bits}
			n++
		}
	}
	if n == 0 { // wider than a /48: one key, charged as a /48
		buf[0] = scopeKey{p.Masked().String(), blockBits}
		n = 1
	}
	return buf[:n]
}

// parseV6 reads an IPv6 address or prefix (zone dropped); an IPv4-mapped
// address is IPv4, not IPv6.
func parseV6(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, false
		}
		a = a.WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return p, false
	}
	return p, true
}

// ClientScope is one key a client is counted under (see ClientKeys) with the
// caps that apply at that level. Stores charge every scope of a client.
type ClientScope struct {
	Key string
	// Issues caps the codes per IssueWindow for everyone under Key, to all
	// addresses: ClientIssues, ClientIssues56 or ClientIssues48.
	Issues int
	// AddressIssues caps the codes per IssueWindow for everyone under Key
	// to one address: ClientAddressIssues at every level.
	AddressIssues int
	// Failures caps the wrong codes per FailureWindow for everyone under
	// Key at one address: ClientFailures, ClientFailures56 or
	// ClientFailures48.
	Failures int
}

// ClientScopes returns client's scopes under l, narrowest first.
func (l Limits) ClientScopes(client string) []ClientScope {
	var buf [maxScopes]ClientScope
	return append([]ClientScope(nil), l.clientScopes(client, &buf)...)
}

// clientScopes is ClientScopes into buf.
func (l *Limits) clientScopes(client string, buf *[maxScopes]ClientScope) []ClientScope {
	var keys [maxScopes]scopeKey
	ks := clientKeys(client, &keys)
	for i, k := range ks {
		buf[i] = ClientScope{Key: k.key, Issues: l.capAt(issues, k.bits, false),
			AddressIssues: l.capAt(issues, k.bits, true), Failures: l.capAt(failures, k.bits, true)}
	}
	return buf[:len(ks)]
}

// capAt is the cap on counter k for one scope of bits (see scopeKey):
// towards one address (perAddress) or all of them.
func (l *Limits) capAt(k counter, bits int, perAddress bool) int {
	switch {
	case k == issues && perAddress:
		return l.ClientAddressIssues
	case k == issues && bits == siteBits:
		return l.ClientIssues56
	case k == issues && bits == blockBits:
		return l.ClientIssues48
	case k == issues:
		return l.ClientIssues
	case bits == siteBits:
		return l.ClientFailures56
	case bits == blockBits:
		return l.ClientFailures48
	}
	return l.ClientFailures
}
