package serve

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
)

// TestNoLockoutAcrossClients: a client that spends its own share of wrong
// guesses for an address is refused for that address, while the owner,
// from another source address, still gets a code and verifies. Over real
// SSH from two loopback addresses, so that the server tells them apart by
// their source as it does on the internet.
func TestNoLockoutAcrossClients(t *testing.T) {
	lim := otp.DefaultLimits()
	lim.ClientFailures = lim.MaxAttempts // one dead code spends a client's share
	lim.ResendCooldown = time.Second     // the cooldown is per address; the test moves past it
	clock := fakeclock.New(time.Now())
	ls := startLoginServerWith(t, otp.Config{Limits: lim, Now: clock.Now}, nil)
	const victim = "victim@example.com"

	attacker, err := dialFrom(t, ls.addr, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	sess := openTerm(t, attacker, 80, 24, nil)
	waitFor(t, sess.out, "Email")
	sess.typeText(t, victim+"\r")
	code := ls.code(t, victim)
	waitFor(t, sess.out, "Check your email")
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	// One guess at a time: the field takes no Enter while one is checked.
	// The log tells when it was; the screen is redrawn in pieces.
	for n := 1; n < lim.MaxAttempts; n++ {
		sess.typeText(t, string(wrong)+"\r")
		waitCount(t, ls.logs, "result=wrong-code", n)
	}
	sess.typeText(t, string(wrong)+"\r")
	waitFor(t, sess.out, "Too many wrong codes")
	clock.Advance(lim.ResendCooldown)
	sess.typeText(t, "\x12") // Ctrl+R, a new code: refused, for this client only
	waitFor(t, ls.logs, "too many wrong codes for this address")
	if n := strings.Count(ls.logs.String(), "already_sent="); n != 1 { // once per code requested
		t.Errorf("%d codes issued, want the attacker's first only", n)
	}

	owner, err := dialFrom(t, ls.addr, "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	sess = openTerm(t, owner, 80, 24, nil)
	waitFor(t, sess.out, "Email")
	sent := time.Now()
	sess.typeText(t, victim+"\r")
	ctx, cancel := context.WithTimeout(t.Context(), waitTime)
	defer cancel()
	msg, err := ls.dev.WaitFor(ctx, victim, sent) // the owner's code, not the attacker's
	if err != nil {
		t.Fatalf("no code for the owner: %v", err)
	}
	code, err = mail.CodeFromMessage(msg.Raw)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, sess.out, "Check your email")
	sess.typeText(t, code+"\r")
	waitFor(t, sess.out, "Verified")
}
