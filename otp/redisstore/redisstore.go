// Package redisstore keeps otp's pending codes and limit counters in Redis,
// so that several otplogin replicas behind a load balancer share them: a
// code issued by one replica verifies on another, and every limit holds
// across all of them.
//
// Each Store method is one Lua script run with EVALSHA (EVAL when the
// server has forgotten it), so each rule is decided atomically on the
// server. Decisions use the time the caller passes in, never the Redis
// clock; Redis key expiry, set with slack past the last time a key matters,
// only collects garbage.
//
// Keys live under a prefix (default "otplogin:"). Addresses and clients
// (every scope of one: an IPv6 client's /64, /56 and /48, see
// otp.ClientKeys) appear in key names only as HMAC-SHA256 digests under
// Options.Secret, and
// values hold only code HMACs, counters and times: a dump or MONITOR of the
// database lists no email address, client or code, and without the secret
// it cannot be matched against a list of known ones either.
//
// The global rate's two counters are keys under the prefix too, so every
// replica sharing the prefix draws on the same rate.
//
// Deployment notes. Every script touches the shared index of pending codes,
// so all keys must live on one Redis primary: Open connects to a single
// server, and Redis Cluster is not supported (all keys would have to share
// one hash slot, which gives no scaling). Run Redis with
// maxmemory-policy noeviction: evicting a counter would quietly lift a
// limit, while a full Redis makes calls fail, and the Service refuses with
// otp.ErrUnavailable. Persistence is optional: a Redis that restarts empty
// only makes users request a new code.
package redisstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/otplogin/otplogin/otp"
)

// Defaults for Options.
const (
	DefaultPrefix  = "otplogin:"
	DefaultTimeout = time.Second
)

// gcSlack is added to every key lifetime so replicas whose clocks differ a
// little never see a key vanish while it still matters.
const gcSlack = time.Minute

var (
	//go:embed lua/lib.lua
	libLua string
	//go:embed lua/issue.lua
	issueLua string
	//go:embed lua/attempt.lua
	attemptLua string
	//go:embed lua/remove.lua
	removeLua string

	issueScript   = redis.NewScript(libLua + issueLua)
	attemptScript = redis.NewScript(libLua + attemptLua)
	removeScript  = redis.NewScript(libLua + removeLua)
)

// Options tune a Store. The zero value means the defaults.
type Options struct {
	// Prefix namespaces every key. Replicas sharing codes must use the same
	// prefix; different prefixes keep deployments apart on one database.
	Prefix string
	// Secret keys the digests that name addresses and clients in Redis
	// (at least 16 bytes; required). Replicas sharing codes must share it;
	// otplogin uses OTPLOGIN_SECRET, the key codes are hashed with.
	Secret []byte
	// Timeout bounds every call to Redis, connecting included (default 1s).
	// Connection settings in the URL's query (dial_timeout, read_timeout,
	// pool_size, ...) take precedence; retries stay off whatever it says.
	Timeout time.Duration
}

// Store is an otp.Store in Redis. It is safe for concurrent use.
type Store struct {
	names   *namer
	rdb     *redis.Client
	addr    string
	prefix  string
	timeout time.Duration
}

var _ otp.Store = (*Store)(nil)

// Open connects to the Redis server at rawURL
// (redis://[user:pass@]host:port/db, or rediss:// for TLS, verified against
// the system roots; skip_verify is refused) and checks that it answers
// within the timeout. Errors name the server but never the
// password; an unreachable server gives an error matching
// otp.ErrUnavailable.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if len(opts.Secret) < 16 {
		return nil, errors.New("redisstore: Options.Secret must be at least 16 bytes")
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisstore: invalid Redis URL: %w", err)
	}
	if o.TLSConfig != nil && o.TLSConfig.InsecureSkipVerify {
		// Without verification anyone on the path can read the password
		// and rewrite every limit.
		return nil, errors.New("redisstore: invalid Redis URL: skip_verify is not allowed: rediss:// always verifies the server against the system roots")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = opts.Timeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = opts.Timeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = opts.Timeout
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = opts.Timeout
	}
	if o.PoolSize == 0 {
		// Each call holds a connection for one round trip; 32 in flight
		// per replica is far more than sub-millisecond scripts need.
		o.PoolSize = 32
	}
	if o.MaxActiveConns == 0 {
		// A stalled server must not make the pool dial without end.
		o.MaxActiveConns = o.PoolSize
	}
	// Scripts are not idempotent: a retry after a lost reply would charge an
	// attempt twice. A failed call fails; the user tries again.
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	o.PipelinePoolSize = -1 // no pipelines here: no second pool
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	s := &Store{names: newNamer(opts.Secret), rdb: redis.NewClient(o), addr: o.Addr, prefix: opts.Prefix, timeout: opts.Timeout}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, s.unavailable("connect", err)
	}
	return s, nil
}

// Close closes the connections to Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// Issue implements otp.Store.
func (s *Store) Issue(ctx context.Context, addr, client string, p otp.Pending, now time.Time, lim otp.Limits) (otp.IssueResult, error) {
	id := s.names.name('a', addr)
	scopes := lim.ClientScopes(client)
	keys := make([]string, 0, 6+3*len(scopes))
	keys = append(keys, s.key("code:", id), s.key("fail:", id), s.key("issues:addr:", id), s.key("pending", ""),
		s.key("rate:second", ""), s.key("rate:hour", ""))
	args := make([]any, 0, 21+3*len(scopes))
	args = append(args, id, p.Hash)
	args = appendTime(args, p.IssuedAt)
	args = appendTime(args, p.ExpiresAt)
	args = appendTime(args, p.ResendAt)
	args = append(args, otp.ExpiredRetention.Nanoseconds())
	args = appendTime(args, now)
	args = append(args, lim.MaxAttempts, lim.FailureBudget, lim.FailureWindow.Nanoseconds(),
		lim.AddressIssues, lim.IssueWindow.Nanoseconds(), lim.MaxPending, gcSlack.Milliseconds(),
		lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour, len(scopes))
	for _, sc := range scopes {
		cid := s.names.name('c', sc.Key)
		keys = append(keys, s.key("issues:client:", cid), s.shareKey("fail:", id, cid), s.shareKey("issues:addr:", id, cid))
		args = append(args, sc.Issues, sc.AddressIssues, sc.Failures)
	}

	r, err := s.run(ctx, "issue", issueScript, keys, args)
	if err != nil {
		return otp.IssueResult{}, err
	}
	switch r.status {
	case "stored":
		return otp.IssueResult{}, nil
	case "existing":
		p, err := r.pending()
		if err != nil {
			return otp.IssueResult{}, s.unavailable("issue", err)
		}
		return otp.IssueResult{Existing: &p}, nil
	}
	return otp.IssueResult{}, s.outcome("issue", r)
}

// Attempt implements otp.Store.
func (s *Store) Attempt(ctx context.Context, addr, client string, now time.Time, lim otp.Limits) (otp.Pending, error) {
	id := s.names.name('a', addr)
	scopes := lim.ClientScopes(client)
	keys := make([]string, 0, 2+len(scopes))
	keys = append(keys, s.key("code:", id), s.key("fail:", id))
	args := make([]any, 0, 6+len(scopes))
	args = appendTime(args, now)
	args = append(args, lim.MaxAttempts, lim.FailureBudget, lim.FailureWindow.Nanoseconds(),
		gcSlack.Milliseconds())
	for _, sc := range scopes {
		keys = append(keys, s.shareKey("fail:", id, s.names.name('c', sc.Key)))
		args = append(args, sc.Failures)
	}

	r, err := s.run(ctx, "attempt", attemptScript, keys, args)
	if err != nil {
		return otp.Pending{}, err
	}
	if r.status == "ok" {
		p, err := r.pending()
		if err != nil {
			return otp.Pending{}, s.unavailable("attempt", err)
		}
		return p, nil
	}
	return otp.Pending{}, s.outcome("attempt", r)
}

// Consume implements otp.Store.
func (s *Store) Consume(ctx context.Context, addr, client string, hash []byte) (bool, error) {
	id := s.names.name('a', addr)
	keys := []string{s.key("code:", id), s.key("fail:", id), s.key("pending", "")}
	for _, k := range otp.ClientKeys(client) {
		keys = append(keys, s.shareKey("fail:", id, s.names.name('c', k)))
	}
	return s.remove(ctx, "consume", id, keys, hash, true)
}

// Discard implements otp.Store.
func (s *Store) Discard(ctx context.Context, addr string, hash []byte) error {
	id := s.names.name('a', addr)
	keys := []string{s.key("code:", id), s.key("fail:", id), s.key("pending", "")}
	_, err := s.remove(ctx, "discard", id, keys, hash, false)
	return err
}

func (s *Store) remove(ctx context.Context, op, id string, keys []string, hash []byte, refund bool) (bool, error) {
	flag := "0"
	if refund {
		flag = "1"
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := removeScript.Run(ctx, s.rdb, keys, id, hash, flag).Int()
	if err != nil {
		return false, s.unavailable(op, err)
	}
	return n == 1, nil
}

// shareKey names a client scope's counter at one address.
func (s *Store) shareKey(kind, addrID, clientID string) string {
	return s.prefix + kind + addrID + ":" + clientID
}

func (s *Store) key(kind, id string) string { return s.prefix + kind + id }

// namer names addresses and clients in keys: hex of HMAC-SHA256 under the
// secret, fixed-length and printable whatever the input. Keyed, because an
// unkeyed digest of a dump could be matched against a list of known
// addresses or the whole IPv4 space.
type namer struct{ pool sync.Pool }

func newNamer(secret []byte) *namer {
	key := bytes.Clone(secret)
	return &namer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// name is kind's name for v; kind keeps an address and a client with the
// same text apart.
func (n *namer) name(kind byte, v string) string {
	m := n.pool.Get().(hash.Hash)
	defer n.pool.Put(m)
	m.Reset()
	m.Write([]byte{kind})
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

func appendTime(args []any, t time.Time) []any {
	return append(args, t.Unix(), t.Nanosecond())
}

// run calls a script within the store's timeout and splits its reply.
func (s *Store) run(ctx context.Context, op string, sc *redis.Script, keys []string, args []any) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := sc.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return reply{}, s.unavailable(op, err)
	}
	if len(v) == 0 {
		return reply{}, s.unavailable(op, errors.New("empty script reply"))
	}
	status, _ := v[0].(string)
	return reply{status: status, fields: v[1:]}, nil
}

// unavailable wraps a Redis failure so that errors.Is(err,
// otp.ErrUnavailable) holds while the message tells the operator why.
func (s *Store) unavailable(op string, err error) error {
	if ne := net.Error(nil); errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("no reply within %v: %w", s.timeout, err)
	}
	return fmt.Errorf("%w: redisstore: %s via Redis at %s: %w", otp.ErrUnavailable, op, s.addr, err)
}

// outcome turns a rule outcome of a script into the otp error.
func (s *Store) outcome(op string, r reply) error {
	switch r.status {
	case "nocode":
		return otp.ErrNoCode
	case "expired":
		return otp.ErrExpired
	case "toomany":
		return otp.ErrTooManyAttempts
	case "limit":
		if len(r.fields) == 3 {
			kind, ok := limitKinds[fmt.Sprint(r.fields[0])]
			at, err := r.time(1)
			if ok && err == nil {
				return &otp.LimitError{Kind: kind, RetryAt: at}
			}
		}
	}
	return s.unavailable(op, fmt.Errorf("unexpected script reply %q %v", r.status, r.fields))
}

var limitKinds = map[string]otp.LimitKind{
	"failures": otp.LimitFailures,
	"resend":   otp.LimitResend,
	"address":  otp.LimitAddress,
	"client":   otp.LimitClient,
	"busy":     otp.LimitBusy,
	"rate":     otp.LimitGlobalRate,
}

// reply is a script's answer: a status word and its fields.
type reply struct {
	status string
	fields []any
}

// pending decodes fields hash, issued, expires, resend (two numbers each)
// and attempts.
func (r reply) pending() (otp.Pending, error) {
	if len(r.fields) != 8 {
		return otp.Pending{}, fmt.Errorf("pending code: %d fields", len(r.fields))
	}
	h, ok := r.fields[0].(string)
	if !ok {
		return otp.Pending{}, fmt.Errorf("pending code: hash is %T", r.fields[0])
	}
	var p otp.Pending
	var err error
	p.Hash = []byte(h)
	if p.IssuedAt, err = r.time(1); err != nil {
		return p, err
	}
	if p.ExpiresAt, err = r.time(3); err != nil {
		return p, err
	}
	if p.ResendAt, err = r.time(5); err != nil {
		return p, err
	}
	a, err := r.int(7)
	p.Attempts = int(a)
	return p, err
}

func (r reply) time(i int) (time.Time, error) {
	sec, err := r.int(i)
	if err != nil {
		return time.Time{}, err
	}
	nsec, err := r.int(i + 1)
	return time.Unix(sec, nsec), err
}

// int reads a number that Lua returned either as a number or as the string
// Redis stored.
func (r reply) int(i int) (int64, error) {
	switch v := r.fields[i].(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("field %d is %T", i, r.fields[i])
}
