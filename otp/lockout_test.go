package otp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otplogin/otplogin/otp"
)

const (
	owner    = "198.51.100.7"
	attacker = "203.0.113.66"
)

// guess makes one wrong guess at alice's code from client and says what
// came of it.
func guess(t *testing.T, e *env, client string) (verdict bool, err error) {
	t.Helper()
	code := e.send.last(t).Code
	err = e.svc.Verify(t.Context(), "alice@example.com", client, wrong(code))
	var wce *otp.WrongCodeError
	return errors.As(err, &wce), err
}

// TestOneClientCannotLockOut plays the worst one client can do to an
// address in an hour with the default limits (see Limits): it has 3 codes
// mailed, kills 2 codes with its 10 guesses, and is then refused, while
// the owner, from another client, still gets a code and verifies.
func TestOneClientCannotLockOut(t *testing.T) {
	e := newEnv(t, nil)
	start := e.clock.Now()
	for i := range 3 {
		if _, err := e.svc.Request(t.Context(), "alice@example.com", attacker); err != nil {
			t.Fatalf("attacker's request %d: %v", i+1, err)
		}
		e.clock.Advance(time.Minute)
	}
	_, err := e.svc.Request(t.Context(), "alice@example.com", attacker)
	wantLimit(t, err, otp.LimitAddress, start.Add(time.Hour))

	verdicts := 0
	kill := func() {
		t.Helper()
		for range 5 {
			ok, err := guess(t, e, attacker)
			if !ok {
				t.Fatalf("attacker's guess %d: %v, want a verdict", verdicts+1, err)
			}
			verdicts++
		}
	}
	firstGuess := e.clock.Now()
	kill() // the last code it had mailed to alice
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Request(t.Context(), "alice@example.com", owner); err != nil {
		t.Fatalf("owner's first request: %v", err)
	}
	kill() // the owner's first code; the attacker's share is spent
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Request(t.Context(), "alice@example.com", owner); err != nil {
		t.Fatalf("owner's second request: %v", err)
	}
	// The attacker is refused, and its refusals cost the owner nothing.
	shareEnds := firstGuess.Add(time.Hour)
	ok, err := guess(t, e, attacker)
	if ok {
		t.Fatal("an 11th guess from one client got a verdict")
	}
	wantLimit(t, err, otp.LimitFailures, shareEnds)
	_, err = e.svc.Request(t.Context(), "alice@example.com", attacker)
	wantLimit(t, err, otp.LimitFailures, shareEnds)
	if err := e.svc.Verify(t.Context(), "alice@example.com", owner, e.send.last(t).Code); err != nil {
		t.Fatalf("owner's code: %v", err)
	}
	if verdicts != 10 || e.send.count() != 5 {
		t.Fatalf("%d guesses judged and %d codes mailed; want 10 and 3 + 2", verdicts, e.send.count())
	}
}

// TestThousandClients plays 1,000 clients against one address for an hour
// with the default limits (see Limits): together they have 10 codes mailed
// and 50 guesses judged, and they do lock the owner out until the window
// ends.
func TestThousandClients(t *testing.T) {
	e := newEnv(t, nil)
	start := e.clock.Now()
	clients := make([]string, 1000)
	for i := range clients {
		clients[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	verdicts, next := 0, 0
	for range 59 {
		// Clients in turn ask for a code until one is given one.
		for range clients {
			_, err := e.svc.Request(t.Context(), "alice@example.com", clients[next%len(clients)])
			if err == nil {
				break
			}
			if !errors.As(err, new(*otp.LimitError)) {
				t.Fatalf("Request: %v", err)
			}
			next++
		}
		// Every client guesses until the code is dead or they are refused.
	guessing:
		for _, c := range clients {
			for {
				ok, err := guess(t, e, c)
				switch {
				case ok && errors.Is(err, otp.ErrTooManyAttempts):
					verdicts++
					break guessing
				case ok:
					verdicts++
				case errors.Is(err, otp.ErrTooManyAttempts), errors.Is(err, otp.ErrNoCode), errors.Is(err, otp.ErrExpired):
					break guessing
				default:
					continue guessing // this client is refused: the next one
				}
			}
		}
		e.clock.Advance(time.Minute)
	}
	if sent := e.send.count(); sent != 10 || verdicts != 50 {
		t.Fatalf("1,000 clients in an hour: %d codes mailed, %d guesses judged; want 10 and 50", sent, verdicts)
	}
	_, err := e.svc.Request(t.Context(), "alice@example.com", owner)
	wantLimit(t, err, otp.LimitAddress, start.Add(time.Hour))
}

func TestGlobalRate(t *testing.T) {
	e := newEnv(t, func(c *otp.Config) { c.Limits.GlobalIssuesPerSecond = 2 })
	now := e.clock.Now()
	for i := range 2 {
		if _, err := e.svc.Request(t.Context(), fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.svc.Request(t.Context(), "late@example.com", "c9")
	wantLimit(t, err, otp.LimitGlobalRate, now.Add(time.Second))
	if n := e.send.count(); n != 2 {
		t.Fatalf("%d codes sent, want 2", n)
	}
	e.clock.Advance(time.Second)
	e.request(t, "late@example.com")
}

// raceStore makes another submission of the same right code win between
// the Service's Attempt and its Consume. Two real parallel submissions do
// that only by chance (TestParallelRightCode saw it in 1 of 200 runs), so
// this stand-in forces the losing side every time.
type raceStore struct{ *otp.MemoryStore }

func (s raceStore) Attempt(ctx context.Context, addr, client string, now time.Time, lim otp.Limits) (otp.Pending, error) {
	p, err := s.MemoryStore.Attempt(ctx, addr, client, now, lim)
	if err == nil {
		// What the winning submission's Verify does after its own Attempt.
		if won, err := s.MemoryStore.Consume(ctx, addr, "the other session", p.Hash); !won || err != nil {
			panic(fmt.Sprintf("the other submission did not win: %v, %v", won, err))
		}
	}
	return p, err
}

func TestVerifyLosesConsumeRace(t *testing.T) {
	clk, snd := newClock(), &recorder{}
	svc, err := otp.New(otp.Config{Now: clk.Now}, raceStore{otp.NewMemoryStore()}, snd)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Request(t.Context(), "alice@example.com", "client"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Verify(t.Context(), "alice@example.com", "client", snd.last(t).Code); !errors.Is(err, otp.ErrNoCode) {
		t.Fatalf("Verify that lost the race to Consume = %v, want ErrNoCode", err)
	}
}
