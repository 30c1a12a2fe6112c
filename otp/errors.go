package otp

import (
	"errors"
	"fmt"
	"time"
)

// Outcomes of Verify and Request that are not limits.
var (
	// ErrInvalidAddress is matched by every *AddressError.
	ErrInvalidAddress = errors.New("invalid email address")
	// ErrInvalidCode: the input is not a code of the configured length; no
	// attempt was charged.
	ErrInvalidCode = errors.New("invalid code")
	// ErrNoCode: no code is pending for the address.
	ErrNoCode = errors.New("no code pending for this address")
	// ErrExpired: the pending code has expired.
	ErrExpired = errors.New("code expired")
	// ErrTooManyAttempts: the code took its last wrong attempt and is dead.
	ErrTooManyAttempts = errors.New("too many attempts")
	// ErrUnavailable wraps store failures (e.g. Redis unreachable).
	ErrUnavailable = errors.New("service temporarily unavailable")
	// ErrDelivery is matched by every *DeliveryError.
	ErrDelivery = errors.New("code delivery failed")
)

// AddressError says what is wrong with an address, in words fit for a user.
type AddressError struct {
	Reason string // e.g. "contains control characters"
}

func (e *AddressError) Error() string { return "invalid email address: " + e.Reason }

// Is makes errors.Is(err, ErrInvalidAddress) hold.
func (e *AddressError) Is(target error) bool { return target == ErrInvalidAddress }

// CodeError says what is wrong with a typed code; no attempt was charged.
type CodeError struct {
	Length int // the expected number of digits
}

func (e *CodeError) Error() string { return fmt.Sprintf("code must be %d digits", e.Length) }

// Is makes errors.Is(err, ErrInvalidCode) hold.
func (e *CodeError) Is(target error) bool { return target == ErrInvalidCode }

// WrongCodeError: the code did not match; AttemptsLeft more are allowed.
// When AttemptsLeft is 0 this miss used the code's last attempt, the code is
// dead, and errors.Is(err, ErrTooManyAttempts) holds as well.
type WrongCodeError struct {
	AttemptsLeft int
}

func (e *WrongCodeError) Error() string {
	if e.AttemptsLeft <= 0 {
		return "incorrect code, no attempts left"
	}
	return fmt.Sprintf("incorrect code, %d attempts left", e.AttemptsLeft)
}

// Is makes errors.Is(err, ErrTooManyAttempts) hold for the miss that killed
// the code, so a caller that only checks ErrTooManyAttempts still learns the
// code is dead.
func (e *WrongCodeError) Is(target error) bool {
	return target == ErrTooManyAttempts && e.AttemptsLeft <= 0
}

// LimitKind names the limit that refused a call.
type LimitKind int

// The limits.
const (
	LimitResend     LimitKind = iota + 1 // resend cooldown for the address
	LimitAddress                         // per-address issue cap, or this client's share of it
	LimitClient                          // per-client issue cap (at any of its prefixes)
	LimitFailures                        // per-address failure budget, or this client's share of it
	LimitBusy                            // global cap on pending codes
	LimitGlobalRate                      // global rate of codes issued, per second or per hour
)

func (k LimitKind) String() string {
	switch k {
	case LimitResend:
		return "resend cooldown"
	case LimitAddress:
		return "too many codes for this address"
	case LimitClient:
		return "too many codes from this client"
	case LimitFailures:
		return "too many wrong codes for this address"
	case LimitBusy:
		return "busy"
	case LimitGlobalRate:
		return "busy: too many codes sent"
	}
	return fmt.Sprintf("LimitKind(%d)", int(k))
}

// LimitError: a limit refused the call; try again at RetryAt.
type LimitError struct {
	Kind    LimitKind
	RetryAt time.Time
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: retry at %s", e.Kind, e.RetryAt.UTC().Format(time.RFC3339))
}

// DeliveryError: the Sender failed for certain and the code was discarded.
// (An ambiguous failure is not an error: see Ticket.MaybeSent.) Err is for
// the operator's log only.
type DeliveryError struct {
	Err error
	// AddressRejected: the destination refused this address for good.
	AddressRejected bool
}

func (e *DeliveryError) Error() string { return "code delivery failed: " + e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDelivery) hold.
func (e *DeliveryError) Is(target error) bool { return target == ErrDelivery }
