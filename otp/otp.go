// Package otp issues and verifies one-time codes that prove a person owns an
// email address.
//
// A Service generates a uniform code from crypto/rand, keeps only its
// HMAC-SHA256 in a Store, hands the code to a Sender, and later checks a typed
// code in constant time. It enforces the limits that the classic tutorial
// lacks: attempts per code, a failure budget per address and each client's
// share of it, a resend cooldown, issue caps per address (and each client's
// share), per client (IPv6 clients at their /64, /56 and /48), a global rate
// of codes sent, and a global cap on pending codes (see Limits for what
// they bound). The package knows nothing about SMTP or terminals.
//
// Addresses are normalised with NormalizeAddress (trimmed, domain
// lower-cased) for display and delivery, and keyed case-blind for storage
// and limits: "Bob@example.com" and "bob@example.com" share one code and
// one set of counters, and a code sent to one verifies for the other.
//
// Outcomes a UI must tell apart are typed errors (see Request and Verify);
// the two that are not errors are Ticket.AlreadySent (a code is already on
// its way: go to the code screen) and Ticket.MaybeSent (delivery was
// ambiguous, the code was kept: go to the code screen with a notice).
//
// MemoryStore keeps state for one process; otp/redisstore shares it between
// replicas. Both pass the conformance suite in otp/storetest.
package otp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/otplogin/otplogin/internal/mask"
)

// Sender delivers a code to an address. The mail package implements it.
//
// A Sender's error may have either method below; the Service reads them with
// errors.As to decide what happened:
//
//	MaybeDelivered() bool  // true: the message may have been accepted (keep the code)
//	AddressRejected() bool // true: the destination refused this address for good
type Sender interface {
	SendCode(ctx context.Context, to, code string, expiresAt time.Time) error
}

// Config configures a Service. The zero value of each field means its default.
type Config struct {
	// Key is the HMAC key, at least 16 bytes. Replicas sharing a store must
	// share it; when empty, New makes a random one (fine for one process).
	Key []byte
	// CodeLength is the number of digits, 6..10 (default 6).
	CodeLength int
	// TTL is how long a code verifies (default 5 minutes).
	TTL time.Duration
	// Limits; each zero field takes its value from DefaultLimits().
	Limits Limits
	// Now is the clock (default time.Now). Tests inject a fake one.
	Now func() time.Time
	// Logger receives operator-only details (delivery errors, with masked
	// addresses); nil discards them. It never receives a code or the key.
	Logger *slog.Logger
}

// Ticket describes the code pending for an address after Request.
type Ticket struct {
	Address   string    // the normalised address
	SentAt    time.Time // when the pending code was issued
	ExpiresAt time.Time
	ResendAt  time.Time // when Request may send a new code
	// AlreadySent: a live code was already pending inside its cooldown, so
	// nothing new was sent; the user should enter that code.
	AlreadySent bool
	// MaybeSent: delivery was ambiguous (the Sender's error said
	// MaybeDelivered); the code was kept and may or may not arrive. Request
	// then returns a nil error: show the code screen with a notice that the
	// mail may be late and a new code can be requested at ResendAt.
	MaybeSent bool
}

// Bounds New enforces on Config, so a typo cannot make codes guessable or
// the store unbounded.
const (
	minCodeLength, maxCodeLength = 6, 10
	minTTL, maxTTL               = 30 * time.Second, time.Hour
	minKeyLen                    = 16
	defaultCodeLength            = 6
	// cleanupTimeout bounds Discard after a failed delivery, which runs even
	// when the caller's context is already done.
	cleanupTimeout = 5 * time.Second
)

// DefaultTTL is how long a code verifies when Config.TTL is zero.
const DefaultTTL = 5 * time.Minute

// Service issues and verifies codes. It is safe for concurrent use.
type Service struct {
	store  Store
	sender Sender
	hash   *hasher
	length int
	ttl    time.Duration
	lim    Limits
	now    func() time.Time
	log    *slog.Logger

	// ctx is cancelled by Close, stopping deliveries in flight.
	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool
}

// New returns a Service over store and sender. It returns an error naming
// the first Config field that is out of bounds.
func New(cfg Config, store Store, sender Sender) (*Service, error) {
	if store == nil || sender == nil {
		return nil, errors.New("otp: New needs a store and a sender")
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		store:  store,
		sender: sender,
		hash:   newHasher(cfg.Key),
		length: cfg.CodeLength,
		ttl:    cfg.TTL,
		lim:    cfg.Limits,
		now:    cfg.Now,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Validate reports the first field of c that New would refuse, as a
// *FieldError, without building a Service.
func (c Config) Validate() error { return c.fill() }

// A FieldError says which Config field is out of bounds and why. Field is
// the field's path in Config, e.g. "TTL" or "Limits.ClientFailures".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "otp: " + e.Field + " " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// fill replaces zero fields with defaults and checks the bounds.
func (c *Config) fill() error {
	switch {
	case len(c.Key) == 0:
		c.Key = make([]byte, 32)
		_, _ = rand.Read(c.Key) // never fails; see crypto/rand.Read
	case len(c.Key) < minKeyLen:
		return fieldError("Key", "must be at least %d bytes, got %d", minKeyLen, len(c.Key))
	}
	if c.CodeLength == 0 {
		c.CodeLength = defaultCodeLength
	}
	if c.CodeLength < minCodeLength || c.CodeLength > maxCodeLength {
		return fieldError("CodeLength", "must be %d..%d, got %d", minCodeLength, maxCodeLength, c.CodeLength)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL < minTTL || c.TTL > maxTTL {
		return fieldError("TTL", "must be %v..%v, got %v", minTTL, maxTTL, c.TTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c.Limits.fill(c.TTL)
}

// Request issues a code for address on behalf of client and sends it, or
// reports the live code already pending. The client is who asks: an SSH
// source address (IPv4, or an IPv6 /64; either way ClientKeys says what it
// is counted as), or "local". All callers passing the same client share its
// caps.
//
// Outcomes:
//   - nil error, Ticket.AlreadySent: a live code sent earlier is still
//     inside its cooldown; nothing was sent, the user should enter that code.
//   - nil error, Ticket.MaybeSent: delivery was ambiguous, the code was kept.
//   - nil error otherwise: the code was sent.
//   - *AddressError: the address is invalid.
//   - *LimitError: a limit refused; nothing was sent. LimitResend means the
//     pending code is dead (attempts used up) and a new one may be requested
//     at RetryAt; LimitGlobalRate and LimitBusy mean the server as a whole
//     is busy.
//   - *DeliveryError: delivery failed for certain and the new code was
//     removed, so a retry may send at once (the issue caps still count
//     it). AddressRejected means the destination refused the address for
//     good.
//   - wrapped ErrUnavailable: the store failed, or the Service is closed.
func (s *Service) Request(ctx context.Context, address, client string) (Ticket, error) {
	addr, key, err := normalize(address)
	if err != nil {
		return Ticket{}, err
	}
	if err := s.check(); err != nil {
		return Ticket{}, err
	}
	code := newCode(s.length)
	now := s.now()
	p := Pending{
		Hash:      s.hash.sum(key, []byte(code)),
		IssuedAt:  now,
		ExpiresAt: now.Add(s.ttl),
		ResendAt:  now.Add(s.lim.ResendCooldown),
	}
	res, err := s.store.Issue(ctx, key, client, p, now, s.lim)
	if err != nil {
		return Ticket{}, storeErr(err)
	}
	if ex := res.Existing; ex != nil {
		return Ticket{Address: addr, SentAt: ex.IssuedAt, ExpiresAt: ex.ExpiresAt, ResendAt: ex.ResendAt, AlreadySent: true}, nil
	}
	t := Ticket{Address: addr, SentAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, ResendAt: p.ResendAt}

	// Close cancels deliveries in flight as well as the caller can.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	unhook := context.AfterFunc(s.ctx, stop)
	defer unhook()
	err = s.sender.SendCode(sctx, addr, code, p.ExpiresAt)
	if err == nil {
		return t, nil
	}
	if flag(err, func(e interface{ MaybeDelivered() bool }) bool { return e.MaybeDelivered() }) {
		s.log.Warn("otp: delivery may have failed; code kept", "to", mask.Address(addr), "err", maskErr(err, addr))
		t.MaybeSent = true
		return t, nil
	}
	// The code can never arrive: drop it so the user need not wait out the
	// cooldown. Run even if ctx is done, since that may be why sending failed.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if derr := s.store.Discard(dctx, key, p.Hash); derr != nil {
		s.log.Error("otp: discard after failed delivery", "to", mask.Address(addr), "err", derr)
	}
	rejected := flag(err, func(e interface{ AddressRejected() bool }) bool { return e.AddressRejected() })
	s.log.Warn("otp: delivery failed; code discarded", "to", mask.Address(addr), "rejected", rejected, "err", maskErr(err, addr))
	return Ticket{}, &DeliveryError{Err: err, AddressRejected: rejected}
}

// storeErr passes a Store's rule outcomes through and makes anything else
// match ErrUnavailable, so a driver error never reaches a caller looking
// like a verdict, whatever the Store forgot to wrap.
func storeErr(err error) error {
	var le *LimitError
	if errors.As(err, &le) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNoCode) ||
		errors.Is(err, ErrExpired) || errors.Is(err, ErrTooManyAttempts) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// flag reports whether some error in err's tree has method M and it says
// true.
func flag[M any](err error, says func(M) bool) bool {
	var m M
	return errors.As(err, &m) && says(m)
}

// maskErr is err's text with addr masked, for the operator's log.
func maskErr(err error, addr string) string { return mask.In(err.Error(), addr) }

// Verify checks code for address on behalf of client, the one whose share
// of the address's failure budget a miss is charged to: pass the same
// client as to Request (the SSH source of the session that types the code;
// "local"). A code requested by one client verifies for another, but each
// pays for its own misses. nil means verified, and the code is used up.
// Otherwise the error is one of:
//   - *AddressError or *CodeError: bad input, nothing charged;
//   - *WrongCodeError: a miss, AttemptsLeft more allowed for this code (the
//     address's failure budget may run out sooner, and then the next Verify
//     says so); with AttemptsLeft 0 the code is now dead and
//     errors.Is(err, ErrTooManyAttempts) holds;
//   - ErrNoCode: nothing pending (never requested, already used, or a
//     parallel submission of the same code won);
//   - ErrExpired; ErrTooManyAttempts (the code was already dead);
//   - *LimitError LimitFailures: the address's failure budget, or this
//     client's share of it, is spent;
//   - wrapped ErrUnavailable.
//
// The attempt is charged before the comparison, so parallel guesses never
// get more verdicts than the limits allow.
func (s *Service) Verify(ctx context.Context, address, client, code string) error {
	_, key, err := normalize(address)
	if err != nil {
		return err
	}
	var buf [maxCodeInput]byte
	digits, err := parseCode(code, s.length, &buf)
	if err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	p, err := s.store.Attempt(ctx, key, client, s.now(), s.lim)
	if err != nil {
		return storeErr(err)
	}
	if !s.hash.equal(p.Hash, key, digits) {
		return &WrongCodeError{AttemptsLeft: max(s.lim.MaxAttempts-p.Attempts, 0)}
	}
	won, err := s.store.Consume(ctx, key, client, p.Hash)
	if err != nil {
		return storeErr(err)
	}
	if !won {
		return ErrNoCode
	}
	return nil
}

// CodeLength is the number of digits a code has.
func (s *Service) CodeLength() int { return s.length }

// Limits returns the limits in force, defaults filled in.
func (s *Service) Limits() Limits { return s.lim }

// TTL returns how long a code verifies.
func (s *Service) TTL() time.Duration { return s.ttl }

// Close cancels deliveries in flight and makes later calls fail with a
// wrapped ErrUnavailable. It does not close the store or sender, which the
// caller owns. The Service starts no goroutines, so none outlive it.
func (s *Service) Close() error {
	s.closed.Store(true)
	s.cancel()
	return nil
}

func (s *Service) check() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: otp service closed", ErrUnavailable)
	}
	return nil
}
