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
// No effect after a timeout. A call the caller gave up on must not change
// anything when a stalled Redis runs it later. Every script gets a deadline
// written in Redis's own clock and compares it with TIME before it reads or
// writes a key; past it, the script answers "late" and the call fails with
// otp.ErrUnavailable, as the caller already saw. The deadline is the
// caller's (its context's deadline or Options.Timeout, the earlier) less a
// tenth of the time left, which the reply has to come back; it is
// translated with a lower bound of the offset between this process's
// monotonic clock and Redis's clock, measured on every reply (see
// serverClock), so it holds whatever the two wall clocks say.
//
// Keys live under a prefix (default "otplogin:"), written as a Redis Cluster
// hash tag, "{otplogin:}code:...", so that every key of a deployment is in
// one hash slot: every script touches the shared index of pending codes and
// the global rate's counters, and a Cluster runs a script only when all its
// keys share a slot. A Cluster therefore gives failover, not write scaling:
// one primary holds all of a deployment's keys, and every replica sharing
// the prefix draws on the same global rate. Addresses and clients (every
// scope of one: an IPv6 client's /64, /56 and /48, see otp.ClientKeys)
// appear in key names only as HMAC-SHA256 digests under Options.Secret, and
// values hold only code HMACs, counters and times: a dump or MONITOR of the
// database lists no email address, client or code, and without the secret
// it cannot be matched against a list of known ones either.
//
// Deployment notes. Open refuses a server whose maxmemory-policy can evict
// keys: evicting a counter would quietly lift a limit, while a full Redis
// with noeviction makes calls fail and the Service refuse with
// otp.ErrUnavailable. Persistence is optional: a Redis that restarts empty
// only makes users request a new code. Replication is asynchronous: when a
// primary dies, what it acknowledged but had not yet sent to the replica
// that takes over is lost (see docs/REDIS.md).
package redisstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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
	//go:embed lua/guard.lua
	guardLua string
	//go:embed lua/issue.lua
	issueLua string
	//go:embed lua/attempt.lua
	attemptLua string
	//go:embed lua/remove.lua
	removeLua string

	issueScript   = newScript(issueLua)
	attemptScript = newScript(attemptLua)
	removeScript  = newScript(removeLua)
	// clockScript only reads TIME, on the server that holds the keys.
	clockScript = newScript("return 0")
)

// Options tune a Store. The zero value means the defaults.
type Options struct {
	// Prefix namespaces every key. Replicas sharing codes must use the same
	// prefix; different prefixes keep deployments apart on one database.
	// It may not contain "{" or "}" (it is the keys' hash tag).
	Prefix string
	// Secret keys the digests that name addresses and clients in Redis
	// (at least 16 bytes; required). Replicas sharing codes must share it;
	// otplogin uses OTPLOGIN_SECRET, the key codes are hashed with.
	Secret []byte
	// Timeout bounds every call to Redis, connecting included (default 1s).
	// Connection settings in the URL's query (dial_timeout, read_timeout,
	// pool_size, ...) take precedence; retries stay off whatever it says.
	Timeout time.Duration
	// AllowCleartext permits redis:// (no TLS) to servers that are not on
	// a loopback address. Without it such a URL is refused before
	// dialing, and so is any server a Cluster or Sentinel names that is
	// not on loopback: the password and every code hash would cross the
	// network readable by anyone on the path.
	AllowCleartext bool
	// CAFile is a PEM file of roots trusted for rediss:// besides the
	// system ones (a private CA).
	CAFile string
	// Logger receives operator warnings, such as an eviction policy that
	// could not be read; nil discards them.
	Logger *slog.Logger
}

// Store is an otp.Store in Redis. It is safe for concurrent use.
type Store struct {
	names   *namer
	rdb     redis.UniversalClient
	desc    string // names the deployment in errors
	prefix  string
	timeout time.Duration
	clock   *serverClock
}

var _ otp.Store = (*Store)(nil)

// Open connects to the Redis deployment rawURL names, in go-redis's forms:
//
//   - redis://[user:pass@]host:port/db (rediss:// for TLS): one server;
//   - redis://[user:pass@]host:port?addr=host2:port&addr=...: a Redis
//     Cluster, given by seed nodes;
//   - redis://[user:pass@]host:port/db?master_name=name&addr=host2:port&...
//     [&password=master-pass]: the master of a Sentinel group, the host and
//     each addr being Sentinels (the user info is the Sentinels' password,
//     password= the master's).
//
// TLS is verified against the system roots and Options.CAFile; skip_verify
// is refused, and so is cleartext to a non-loopback host unless
// Options.AllowCleartext. Open then checks that the deployment answers
// within the timeout and that no server evicts keys (maxmemory-policy must
// be noeviction; when CONFIG is not allowed it warns on Options.Logger and
// goes on). Errors name the server but never the password; an unreachable
// server gives an error matching otp.ErrUnavailable.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if len(opts.Secret) < 16 {
		return nil, errors.New("redisstore: Options.Secret must be at least 16 bytes")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: Options.Prefix %q may not contain { or }", opts.Prefix)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := connect(rawURL, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{names: newNamer(opts.Secret), rdb: d.rdb, desc: d.desc, prefix: opts.Prefix,
		timeout: opts.Timeout, clock: newServerClock()}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.measure(ctx, "connect"); err != nil {
		_ = s.rdb.Close()
		return nil, err
	}
	if err := checkEviction(ctx, d, opts.Logger); err != nil {
		_ = s.rdb.Close()
		if !errors.Is(err, errEvicts) {
			err = s.unavailable("connect", err)
		}
		return nil, err
	}
	return s, nil
}

// errEvicts marks a server whose settings Open refuses.
var errEvicts = errors.New("maxmemory-policy evicts keys")

// checkEviction refuses a server that may evict keys. With CONFIG renamed
// or forbidden (managed Redis often does this) it cannot tell, and warns.
func checkEviction(ctx context.Context, d *deployment, log *slog.Logger) error {
	check := func(ctx context.Context, c *redis.Client, name string) error {
		v, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) {
				log.Warn("redisstore: cannot read maxmemory-policy; make sure it is noeviction, or an evicted counter lifts a limit and an evicted code is lost",
					"server", name, "err", err)
				return nil
			}
			return err
		}
		if p := v["maxmemory-policy"]; p != "noeviction" && p != "" {
			return fmt.Errorf("redisstore: %s has maxmemory-policy %s, which can evict keys: an evicted counter lifts a limit and an evicted code is lost; set maxmemory-policy noeviction: %w", name, p, errEvicts)
		} else if p == "" {
			log.Warn("redisstore: Redis did not report maxmemory-policy; make sure it is noeviction", "server", name)
		}
		return nil
	}
	if d.shards != nil {
		return d.shards(ctx, func(ctx context.Context, c *redis.Client) error {
			return check(ctx, c, "Redis Cluster node "+c.Options().Addr)
		})
	}
	c, ok := d.rdb.(*redis.Client)
	if !ok {
		return fmt.Errorf("unexpected client %T", d.rdb)
	}
	return check(ctx, c, d.desc)
}

// Close closes the connections to Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping checks that the server holding the keys answers within the timeout,
// for a readiness check: it runs the script that only reads Redis's clock
// (refreshing the clock offset every call relies on), on the server every
// other call goes to. The error matches otp.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.measure(ctx, "ping")
}

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
	v, err := s.eval(ctx, op, removeScript, keys, []any{id, hash, flag})
	if err != nil {
		return false, err
	}
	n, ok := v.(int64)
	if !ok {
		return false, s.unavailable(op, fmt.Errorf("unexpected script reply %v", v))
	}
	return n == 1, nil
}

// shareKey names a client scope's counter at one address.
func (s *Store) shareKey(kind, addrID, clientID string) string {
	return s.key(kind, addrID+":"+clientID)
}

// key is a key name: the prefix as a hash tag, so all of a deployment's
// keys share one Cluster slot.
func (s *Store) key(kind, id string) string { return "{" + s.prefix + "}" + kind + id }

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

// run calls a script that answers a status word and its fields.
func (s *Store) run(ctx context.Context, op string, sc *script, keys []string, args []any) (reply, error) {
	r, err := s.eval(ctx, op, sc, keys, args)
	if err != nil {
		return reply{}, err
	}
	v, ok := r.([]any)
	if !ok || len(v) == 0 {
		return reply{}, s.unavailable(op, fmt.Errorf("unexpected script reply %v", r))
	}
	status, _ := v[0].(string)
	return reply{status: status, fields: v[1:]}, nil
}

// errLate is a call that reached Redis after its deadline and did nothing.
var errLate = errors.New("the call reached Redis after its deadline and was not run")

// eval runs a script under its deadline (see guard.lua) and returns the
// body's result. The deadline, in Redis's clock, is the caller's less a
// tenth of the time left, so that a script that ran in time can still
// deliver its reply before the caller gives up.
func (s *Store) eval(ctx context.Context, op string, sc *script, keys []string, args []any) (any, error) {
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !s.clock.fresh(s.clock.now()) {
		if err := s.measure(ctx, op); err != nil {
			return nil, err
		}
	}
	left := time.Until(deadline)
	if left <= 0 {
		return nil, s.unavailable(op, context.DeadlineExceeded)
	}
	status, result, err := s.guarded(ctx, sc, keys, append(args, s.clock.toRedis(s.clock.now()+left-left/10)))
	switch {
	case err != nil:
		return nil, s.unavailable(op, err)
	case status == "late":
		return nil, s.unavailable(op, errLate)
	}
	return result, nil
}

// measure samples Redis's clock with a script that does nothing, on the
// server that holds the keys.
func (s *Store) measure(ctx context.Context, op string) error {
	// The deadline is far ahead: nothing to guard.
	if _, _, err := s.guarded(ctx, clockScript, []string{s.key("pending", "")}, []any{int64(1) << 53}); err != nil {
		return s.unavailable(op, err)
	}
	return nil
}

// guarded runs sc, whose last argument is its deadline, and keeps the
// server's TIME that its reply carries as a clock sample. It returns the
// reply's status, "done" or "late", and the body's result.
func (s *Store) guarded(ctx context.Context, sc *script, keys []string, args []any) (string, any, error) {
	t0 := s.clock.now()
	v, err := s.evalsha(ctx, sc, keys, args)
	t1 := s.clock.now()
	if err != nil {
		return "", nil, err
	}
	r, ok := v.([]any)
	if !ok || len(r) < 3 {
		return "", nil, fmt.Errorf("unexpected script reply %v", v)
	}
	at, err := redisTime(r[1], r[2])
	if err != nil {
		return "", nil, err
	}
	s.clock.sample(t0, t1, at)
	switch status, _ := r[0].(string); {
	case status == "late" && len(r) == 3:
		return status, nil, nil
	case status == "done" && len(r) == 4:
		return status, r[3], nil
	}
	return "", nil, fmt.Errorf("unexpected script reply %v", v)
}

// redisTime reads TIME's two fields, seconds and microseconds.
func redisTime(sec, usec any) (time.Duration, error) {
	ss, _ := sec.(string)
	us, _ := usec.(string)
	a, err1 := strconv.ParseInt(ss, 10, 64)
	b, err2 := strconv.ParseInt(us, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("script reply TIME %v %v: %w", sec, usec, err)
	}
	return time.Duration(a)*time.Second + time.Duration(b)*time.Microsecond, nil
}

// script is a script body wrapped in the library and the deadline guard.
type script struct{ src, sha string }

func newScript(body string) *script {
	src := libLua + guardLua + "\nreturn guarded(function()\n" + body + "\nend)\n"
	h := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(h[:])}
}

// evalsha runs sc by its digest, sending the source only when the server
// does not know it (after a restart, a failover or SCRIPT FLUSH).
func (s *Store) evalsha(ctx context.Context, sc *script, keys []string, args []any) (any, error) {
	v, err := s.do(ctx, "evalsha", sc.sha, keys, args)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		v, err = s.do(ctx, "eval", sc.src, keys, args)
	}
	return v, err
}

func (s *Store) do(ctx context.Context, name, script string, keys []string, args []any) (any, error) {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := noRetry{redis.NewCmd(ctx, a...)}
	_ = s.rdb.Process(ctx, cmd)
	return cmd.Result()
}

// noRetry is a command go-redis never sends twice. The clients are built
// with retries off, but a Cluster client still retries a command whose
// connection broke, and a script that ran but lost its reply must not run
// again. Redirections (MOVED, ASK) still happen: those scripts did not run.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }

// unavailable wraps a Redis failure so that errors.Is(err,
// otp.ErrUnavailable) holds while the message tells the operator why.
func (s *Store) unavailable(op string, err error) error {
	if ne := net.Error(nil); errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("no reply within %v: %w", s.timeout, err)
	}
	return fmt.Errorf("%w: redisstore: %s via %s: %w", otp.ErrUnavailable, op, s.desc, err)
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
