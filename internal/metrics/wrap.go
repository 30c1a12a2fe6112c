package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otplogin/otplogin/internal/mask"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
)

// Service is the code service as the UI uses it (ui.Service).
type Service interface {
	Request(ctx context.Context, address, client string) (otp.Ticket, error)
	Verify(ctx context.Context, address, client, code string) error
	CodeLength() int
}

// Service returns svc counting each request and check by its result, and
// logging the refusals of the otp limits at info, with the masked address,
// the client and the limit, a few lines a second per limit.
func (m *Metrics) Service(svc Service) Service { return &service{svc, m} }

type service struct {
	Service
	m *Metrics
}

func (s *service) Request(ctx context.Context, address, client string) (otp.Ticket, error) {
	t, err := s.Service.Request(ctx, address, client)
	var result string
	switch {
	case err == nil && t.AlreadySent:
		result = resultAlreadySent
	case err == nil && t.MaybeSent:
		result = resultMaybeSent
	case err == nil:
		result = resultSent
	default:
		result = s.m.failure("request", "code request refused", address, client, err)
	}
	s.m.requests.inc(result)
	return t, err
}

func (s *service) Verify(ctx context.Context, address, client, code string) error {
	err := s.Service.Verify(ctx, address, client, code)
	result := resultVerified
	var we *otp.WrongCodeError
	switch {
	case err == nil:
	case errors.As(err, &we):
		result = resultWrongCode // the miss that killed a code included
	case errors.Is(err, otp.ErrTooManyAttempts):
		result = resultTooMany
	case errors.Is(err, otp.ErrExpired):
		result = resultExpired
	case errors.Is(err, otp.ErrNoCode):
		result = resultNoCode
	case errors.Is(err, otp.ErrInvalidCode):
		result = resultInvalidCode
	default:
		result = s.m.failure("verify", "verify refused", address, client, err)
	}
	s.m.verifications.inc(result)
	return err
}

// failure is the result word for an error both calls can return; a limit's
// refusal is counted and logged.
func (m *Metrics) failure(call, msg, address, client string, err error) string {
	var le *otp.LimitError
	switch {
	case errors.As(err, &le):
		limit := limitWord(le.Kind)
		m.limitRefusals[call].inc(limit)
		if m.refusals.Allow(limit) {
			m.log.Info(msg, "addr", maskAddress(address), "client", client, "limit", limit,
				"retry_at", le.RetryAt.Format(time.RFC3339))
		}
		return resultLimited
	case errors.Is(err, otp.ErrInvalidAddress):
		return resultInvalidAddress
	case errors.Is(err, otp.ErrDelivery):
		return resultDeliveryFailed
	}
	return resultUnavailable
}

// maskAddress masks the address as the UI's log lines do: normalised first,
// so that one address is one masked form.
func maskAddress(address string) string {
	if a, err := otp.NormalizeAddress(address); err == nil {
		address = a
	}
	return mask.Address(address)
}

// Store returns s timing each call, by op.
func (m *Metrics) Store(s otp.Store) otp.Store { return &store{s, m} }

type store struct {
	otp.Store
	m *Metrics
}

func observe(h prometheus.Observer, start time.Time) { h.Observe(time.Since(start).Seconds()) }

func (s *store) Issue(ctx context.Context, addr, client string, p otp.Pending, now time.Time, lim otp.Limits) (otp.IssueResult, error) {
	defer observe(s.m.storeDuration.issue, time.Now())
	return s.Store.Issue(ctx, addr, client, p, now, lim)
}

func (s *store) Attempt(ctx context.Context, addr, client string, now time.Time, lim otp.Limits) (otp.Pending, error) {
	defer observe(s.m.storeDuration.attempt, time.Now())
	return s.Store.Attempt(ctx, addr, client, now, lim)
}

func (s *store) Consume(ctx context.Context, addr, client string, hash []byte) (bool, error) {
	defer observe(s.m.storeDuration.consume, time.Now())
	return s.Store.Consume(ctx, addr, client, hash)
}

func (s *store) Discard(ctx context.Context, addr string, hash []byte) error {
	defer observe(s.m.storeDuration.discard, time.Now())
	return s.Store.Discard(ctx, addr, hash)
}

// Sender returns s timing each send, counting failures by the stage that
// failed (s's errors are *mail.SendError), and telling MailCheck whether
// the relay was reached.
func (m *Metrics) Sender(s otp.Sender) otp.Sender { return &sender{s, m} }

type sender struct {
	otp.Sender
	m *Metrics
}

func (s *sender) SendCode(ctx context.Context, to, code string, expiresAt time.Time) error {
	start := time.Now()
	err := s.Sender.SendCode(ctx, to, code, expiresAt)
	if err == nil {
		observe(s.m.mailSent, start)
		s.m.relay.reached(true)
		return nil
	}
	observe(s.m.mailFailed, start)
	var se *mail.SendError
	if errors.As(err, &se) {
		s.m.mailFailures.inc(string(se.Stage))
		s.m.relay.reached(!relayStage(se.Stage))
	} else {
		s.m.mailFailures.inc(other)
	}
	return err
}

// relayStage reports whether a failure at stage means the relay could not
// be used at all (not reached, not secured, not logged in to), as opposed
// to refusing this one message.
func relayStage(st mail.Stage) bool {
	switch st {
	case mail.StageConnect, mail.StageHello, mail.StageTLS, mail.StageAuth:
		return true
	}
	return false
}
