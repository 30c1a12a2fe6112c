package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// SummaryEvery is how often Summarize is meant to log: often enough to see
// a flood as it happens, rarely enough that an idle server wakes once a
// minute.
const SummaryEvery = time.Minute

// tally is what a summary line counts, since the process started.
type tally struct {
	sessions, requested, sent, verified, wrong, refused, failures float64
}

func (m *Metrics) tally() tally {
	return tally{
		sessions:  value(m.sessionsStarted),
		requested: m.requests.sum(),
		sent:      value(m.requests[resultSent]) + value(m.requests[resultMaybeSent]),
		verified:  value(m.verifications[resultVerified]),
		wrong:     value(m.verifications[resultWrongCode]),
		refused:   m.sshRefusals.sum() + m.limitRefusals["request"].sum() + m.limitRefusals["verify"].sum(),
		failures: value(m.requests[resultDeliveryFailed]) + value(m.requests[resultUnavailable]) +
			value(m.verifications[resultUnavailable]) + value(m.panics),
	}
}

// Summarize logs, on each tick, one line with what happened since the
// previous one (sessions started, codes requested and sent, codes verified
// and wrong, refusals by any limit, and failures: delivery, the store,
// panics), and nothing when nothing did. It returns when ctx ends. The
// program gives it a time.Ticker's channel, ticking every SummaryEvery.
func (m *Metrics) Summarize(ctx context.Context, tick <-chan time.Time) {
	s := m.startSummary()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			s.logSince()
		}
	}
}

// summary remembers the counts at the last line, so the next says what
// moved since.
type summary struct {
	m    *Metrics
	last tally
}

func (m *Metrics) startSummary() *summary { return &summary{m: m, last: m.tally()} }

// logSince logs what moved since the last call, or nothing if nothing did.
func (s *summary) logSince() {
	now := s.m.tally()
	d := tally{
		sessions:  now.sessions - s.last.sessions,
		requested: now.requested - s.last.requested,
		sent:      now.sent - s.last.sent,
		verified:  now.verified - s.last.verified,
		wrong:     now.wrong - s.last.wrong,
		refused:   now.refused - s.last.refused,
		failures:  now.failures - s.last.failures,
	}
	s.last = now
	if d == (tally{}) {
		return
	}
	s.m.log.Info("last minute", "sessions", int64(d.sessions), "codes_requested", int64(d.requested),
		"codes_sent", int64(d.sent), "verified", int64(d.verified), "wrong_codes", int64(d.wrong),
		"refusals", int64(d.refused), "failures", int64(d.failures))
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// sum adds up every value of a labelled counter.
func (l labelled) sum() float64 {
	var n float64
	for _, c := range l {
		n += value(c)
	}
	return n
}
