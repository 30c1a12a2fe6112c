package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// deployment is what a URL names: the client for it and how errors name it.
type deployment struct {
	rdb  redis.UniversalClient
	desc string // "Redis at host:port", "Redis Cluster at ...", "Sentinel group ..."
	// shards runs fn on every server holding data (all Cluster nodes), to
	// read their settings; nil: the client's own server.
	shards func(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error
}

// settings are the fields every go-redis options type has, by pointer, so
// that one function applies the store's rules to whichever URL form was
// given.
type settings struct {
	dial, read, write, pool               *time.Duration
	poolSize, maxActive, retries, dialers *int
	pipelinePool                          *int
	ctxTimeout                            *bool
	tls                                   **tls.Config
	dialer                                *func(ctx context.Context, network, addr string) (net.Conn, error)
}

// connect parses rawURL in one of go-redis's three forms and builds its
// client with the store's rules. It does not dial.
func connect(rawURL string, opts Options) (*deployment, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisstore: invalid Redis URL: %w", err)
	}
	q := u.Query()
	invalid := func(err error) error {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("redisstore: invalid Redis URL: %w", err)
	}

	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, invalid(err)
		}
		if o.RouteByLatency || o.RouteRandomly || o.ReplicaOnly {
			// Every call writes, so it must reach the master.
			return nil, invalid(errors.New("route_by_latency, route_randomly and replica_only are not allowed: every call writes to the master"))
		}
		if err := apply(settings{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout,
			&o.PoolSize, &o.MaxActiveConns, &o.MaxRetries, &o.DialerRetries, &o.PipelinePoolSize,
			&o.ContextTimeoutEnabled, &o.TLSConfig, &o.Dialer}, u.Scheme, o.SentinelAddrs, opts); err != nil {
			return nil, err
		}
		return &deployment{rdb: redis.NewFailoverClient(o),
			desc: fmt.Sprintf("Redis master %q of the Sentinels at %s", o.MasterName, strings.Join(o.SentinelAddrs, ","))}, nil

	case q.Has("addr"):
		if q.Has("skip_verify") {
			// ParseClusterURL rejects it anyway, with a less helpful message.
			return nil, errSkipVerify
		}
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, invalid(err)
		}
		if err := apply(settings{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout,
			&o.PoolSize, &o.MaxActiveConns, &o.MaxRetries, &o.DialerRetries, &o.PipelinePoolSize,
			&o.ContextTimeoutEnabled, &o.TLSConfig, &o.Dialer}, u.Scheme, o.Addrs, opts); err != nil {
			return nil, err
		}
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c := redis.NewClusterClient(o)
		return &deployment{rdb: c, desc: "Redis Cluster at " + strings.Join(o.Addrs, ","), shards: c.ForEachShard}, nil

	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, invalid(err)
		}
		var addrs []string
		if o.Network == "tcp" {
			addrs = []string{o.Addr}
		}
		if err := apply(settings{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout,
			&o.PoolSize, &o.MaxActiveConns, &o.MaxRetries, &o.DialerRetries, &o.PipelinePoolSize,
			&o.ContextTimeoutEnabled, &o.TLSConfig, &o.Dialer}, u.Scheme, addrs, opts); err != nil {
			return nil, err
		}
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return &deployment{rdb: redis.NewClient(o), desc: "Redis at " + o.Addr}, nil
	}
}

var errSkipVerify = errors.New("redisstore: invalid Redis URL: skip_verify is not allowed: rediss:// always verifies the server (see Options.CAFile for a private CA)")

// apply sets the store's rules on one options value: timeouts from
// Options.Timeout unless the URL set them, no retries, TLS verified against
// the system roots and CAFile, and cleartext only to loopback addresses
// unless AllowCleartext.
func apply(s settings, scheme string, addrs []string, opts Options) error {
	if *s.tls != nil && (*s.tls).InsecureSkipVerify {
		// Without verification anyone on the path can read the password
		// and rewrite every limit.
		return errSkipVerify
	}
	if *s.tls != nil {
		roots, err := rootsWith(opts.CAFile)
		if err != nil {
			return err
		}
		(*s.tls).RootCAs = roots
		(*s.tls).MinVersion = tls.VersionTLS12
	}
	cleartext := *s.tls == nil && scheme != "unix"
	if cleartext && !opts.AllowCleartext {
		for _, a := range addrs {
			if !loopbackAddr(a) {
				return fmt.Errorf("%w: redis:// to %s, which is not a loopback address: the password and every code hash would cross the network readable; use rediss://, or allow cleartext explicitly (Options.AllowCleartext) for a network you trust", ErrCleartext, a)
			}
		}
	}
	for _, d := range []*time.Duration{s.dial, s.read, s.write, s.pool} {
		if *d == 0 {
			*d = opts.Timeout
		}
	}
	if *s.poolSize == 0 {
		// Each call holds a connection for one round trip; 32 in flight
		// per replica is far more than sub-millisecond scripts need.
		*s.poolSize = 32
	}
	if *s.maxActive == 0 {
		// A stalled server must not make the pool dial without end.
		*s.maxActive = *s.poolSize
	}
	// Scripts are not idempotent: a retry after a lost reply would charge an
	// attempt twice. A failed call fails; the user tries again. (Cluster
	// redirections, MOVED and ASK, still happen: the script did not run.)
	*s.retries = -1
	*s.dialers = 1
	*s.ctxTimeout = true
	*s.pipelinePool = -1 // no pipelines here: no second pool
	*s.dialer = dialer(*s.tls, cleartext && !opts.AllowCleartext, *s.dial)
	return nil
}

// dialer dials like go-redis's own, and when cleartext is limited to
// loopback, refuses any other address: a Cluster or a Sentinel names the
// servers to dial itself, so checking the URL's addresses is not enough.
func dialer(tc *tls.Config, loopbackOnly bool, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if loopbackOnly && network != "unix" && !loopbackAddr(addr) {
			return nil, fmt.Errorf("redisstore: refusing cleartext to %s, which is not a loopback address", addr)
		}
		d := &net.Dialer{Timeout: timeout, KeepAliveConfig: keepAlive}
		if tc != nil {
			return (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, network, addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// keepAlive is go-redis's own: probe after 30 s idle, give up after three
// unanswered probes 5 s apart.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// loopbackAddr reports whether host:port names a loopback IP or
// "localhost", the rule mail applies to cleartext SMTP.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Errors of Open that name one option, so that a caller can say which of
// its settings to fix.
var (
	// ErrCleartext: a redis:// URL names a server beyond loopback and
	// Options.AllowCleartext is not set.
	ErrCleartext = errors.New("redisstore: cleartext Redis beyond loopback")
	// ErrCAFile: Options.CAFile cannot be read or holds no certificate.
	ErrCAFile = errors.New("redisstore: CA file")
)

// rootsWith is the system roots plus the PEM certificates in caFile, or
// nil (the system roots) without one, as mail does for SMTP.
func rootsWith(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCAFile, err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: %q holds no PEM certificate", ErrCAFile, caFile)
	}
	return roots, nil
}
