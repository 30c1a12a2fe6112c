// Package otp issues and verifies one-time codes that prove a person owns an
// email address.
//
// A Service generates a uniform code from crypto/rand, keeps only its
// HMAC-SHA256 in a Store, hands the code to a Sender, and later checks a typed
// code in constant time. It enforces the limits that the classic tutorial
// lacks: attempts per code, a per-address failure budget, a resend cooldown,
// issue caps per address and per client, and a global cap on pending codes.
// The package knows nothing about SMTP or terminals.
package otp

import (
	"context"
	"errors"
	"time"
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
	// Key is the HMAC key. Replicas sharing a store must share it; when
	// empty, New makes a random one (fine for one process).
	Key []byte
	// CodeLength is the number of digits, 6..10 (default 6).
	CodeLength int
	// TTL is how long a code verifies (default 5 minutes).
	TTL time.Duration
	// Limits; the zero value means DefaultLimits().
	Limits Limits
	// Now is the clock (default time.Now). Tests inject a fake one.
	Now func() time.Time
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
	// MaybeSent: delivery was ambiguous; the code may or may not arrive.
	MaybeSent bool
}

// Service issues and verifies codes. It is safe for concurrent use.
type Service struct{}

// New returns a Service over store and sender.
func New(cfg Config, store Store, sender Sender) (*Service, error) {
	return nil, errors.New("otp: not implemented")
}

// Request issues a code for address on behalf of client (an SSH source
// address or "local") and sends it, or reports the live code already pending.
func (s *Service) Request(ctx context.Context, address, client string) (Ticket, error) {
	return Ticket{}, errors.New("otp: not implemented")
}

// Verify checks code for address. nil means verified, and the code is used
// up. Otherwise the error is a *CodeError (bad format, nothing charged), a
// *WrongCodeError, ErrNoCode, ErrExpired, ErrTooManyAttempts, a *LimitError
// or a wrapped ErrUnavailable.
func (s *Service) Verify(ctx context.Context, address, code string) error {
	return errors.New("otp: not implemented")
}

// CodeLength is the number of digits a code has.
func (s *Service) CodeLength() int { return 0 }

// Close stops the Service's background work (the memory store's sweeper).
func (s *Service) Close() error { return nil }

// NormalizeAddress validates address as a bare addr-spec of at most 254
// bytes with no control characters, trims it and lower-cases its domain.
func NormalizeAddress(address string) (string, error) {
	return "", errors.New("otp: not implemented")
}

// ParseCode accepts "123456", "123 456" or "123-456" and returns the digits.
func ParseCode(input string, length int) (string, error) {
	return "", errors.New("otp: not implemented")
}
