package devserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otplogin/otplogin/mail"
)

// ErrNoMessage means the outbox holds no message for the address.
var ErrNoMessage = errors.New("no message")

// pollInterval is how often NewestCode looks at the outbox again while it
// waits for a message.
const pollInterval = 200 * time.Millisecond

// NewestCode returns the one-time code in the newest message for address
// in outbox, the folder a Server writes to ("" means DefaultOutbox). The
// address is matched case-blind, as mail systems treat it. The newest
// message is the one that counts: a new code voids the ones before it.
//
// Without wait, an outbox with no message for address (or no outbox at
// all) gives ErrNoMessage at once. With wait, NewestCode looks again five
// times a second until a message arrives or ctx ends. It polls rather than
// watching the folder: a person or a script waits for one message that
// takes a moment to come, a few listings of a small folder cost nothing,
// and polling needs no dependency and works the same on every system and
// file system.
func NewestCode(ctx context.Context, outbox, address string, wait bool) (string, error) {
	if outbox == "" {
		outbox = DefaultOutbox()
	}
	address = strings.TrimSpace(address)
	var tick *time.Ticker
	for {
		code, err := newestCode(outbox, address)
		if !wait || !errors.Is(err, ErrNoMessage) {
			return code, err
		}
		if tick == nil {
			tick = time.NewTicker(pollInterval)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("devserver: waiting for a message to %s: %w", address, ctx.Err())
		case <-tick.C:
		}
	}
}

// newestCode looks once. File names sort by time (see the package doc), so
// the listing is read from its end. The name holds the recipient only
// lower-cased and with unusual bytes replaced, so the message's To header
// confirms it is the address asked for.
func newestCode(outbox, address string) (string, error) {
	entries, err := os.ReadDir(outbox) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("devserver: %w for %s in %s", ErrNoMessage, address, outbox) // no server has run yet
	}
	if err != nil {
		return "", fmt.Errorf("devserver: outbox: %w", err)
	}
	want := sanitize(address)
	for i := len(entries) - 1; i >= 0; i-- {
		name := entries[i].Name()
		if rcpt, ok := Recipient(name); !ok || rcpt != want {
			continue
		}
		raw, err := readMessage(filepath.Join(outbox, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return "", fmt.Errorf("devserver: outbox: %w", err)
		}
		if !addressedTo(raw, address) {
			continue
		}
		code, err := mail.CodeFromMessage(raw)
		if err != nil {
			return "", fmt.Errorf("devserver: %s: %w", name, err)
		}
		return code, nil
	}
	return "", fmt.Errorf("devserver: %w for %s in %s", ErrNoMessage, address, outbox)
}

// readMessage reads an outbox file, no more than a Server accepts.
func readMessage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxMessageBytes))
}

// addressedTo reports whether the message's To header names address,
// compared case-blind.
func addressedTo(raw []byte, address string) bool {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return false
	}
	list, err := msg.Header.AddressList("To")
	if err != nil {
		return false
	}
	for _, a := range list {
		if strings.EqualFold(a.Address, address) {
			return true
		}
	}
	return false
}

// Recipient returns the recipient part of an outbox file name,
// "<UTC time>-<8 hex>-<recipient>.eml", as the server wrote it (lower-case,
// unusual bytes replaced); files still being written start with a dot and
// are not messages yet.
func Recipient(name string) (string, bool) {
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	name, ok := strings.CutSuffix(name, ".eml")
	if !ok {
		return "", false
	}
	parts := strings.SplitN(name, "-", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		return "", false
	}
	return parts[2], true
}
