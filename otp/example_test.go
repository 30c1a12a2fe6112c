package otp_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otplogin/otplogin/otp"
)

// inbox is a Sender that keeps the last code it was given; a real program
// passes a *mail.Sender.
type inbox struct{ to, code string }

func (b *inbox) SendCode(_ context.Context, to, code string, _ time.Time) error {
	b.to, b.code = to, code
	return nil
}

// A Service mails a code to an address and checks the code typed back.
// client names the requester for the per-client limits (the SSH source
// address, or "local").
func ExampleNew() {
	ctx := context.Background()
	mailbox := &inbox{}
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), mailbox)
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	ticket, err := svc.Request(ctx, "Alice@Example.COM", "local")
	if err != nil {
		panic(err)
	}
	fmt.Println("code sent to", ticket.Address, "valid for", ticket.ExpiresAt.Sub(ticket.SentAt))

	var wrong *otp.WrongCodeError
	if err := svc.Verify(ctx, ticket.Address, "local", notThe(mailbox.code)); errors.As(err, &wrong) {
		fmt.Println("wrong code,", wrong.AttemptsLeft, "attempts left")
	}
	// Spaces and dashes, as people paste codes, are fine.
	typed := mailbox.code[:3] + " " + mailbox.code[3:]
	fmt.Println("verified:", svc.Verify(ctx, ticket.Address, "local", typed) == nil)
	fmt.Println("again:", svc.Verify(ctx, ticket.Address, "local", typed))
	// Output:
	// code sent to Alice@example.com valid for 5m0s
	// wrong code, 4 attempts left
	// verified: true
	// again: no code pending for this address
}

// notThe returns a code of the same length that is not code.
func notThe(code string) string {
	last := (code[len(code)-1]-'0'+1)%10 + '0'
	return code[:len(code)-1] + string(rune(last))
}
