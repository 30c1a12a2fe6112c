package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
)

// Outbox reads codes from the dev mail server's outbox folder, where each
// message is a file named <UTC time>-<8 hex>-<recipient>.eml (see
// mail/devserver). Use a fresh folder per run: every lookup that misses
// lists the whole folder.
type Outbox struct {
	Dir string
	// Poll is the wait between two listings while a message has not
	// arrived (default 5ms).
	Poll time.Duration

	mu     sync.Mutex
	newest map[string]string // recipient -> newest file name
}

// NewOutbox returns an Outbox over dir.
func NewOutbox(dir string) *Outbox { return &Outbox{Dir: dir} }

// Code implements CodeReader: it waits for a message to address and returns
// the code in the newest one.
func (o *Outbox) Code(ctx context.Context, address string) (string, error) {
	poll := o.Poll
	if poll <= 0 {
		poll = 5 * time.Millisecond
	}
	rcpt := strings.ToLower(address)
	for {
		name, err := o.find(rcpt)
		if err != nil {
			return "", err
		}
		if name != "" {
			raw, err := os.ReadFile(filepath.Join(o.Dir, name))
			if err != nil {
				return "", fmt.Errorf("outbox: %w", err)
			}
			code, err := mail.CodeFromMessage(raw)
			if err != nil {
				return "", fmt.Errorf("outbox %s: %w", name, err)
			}
			return code, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("outbox: no message yet: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// find returns the newest file for rcpt, listing the folder if none is
// known yet. Listings are serialised: a waiter that queued behind another's
// listing usually finds its message already indexed.
func (o *Outbox) find(rcpt string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if name, ok := o.newest[rcpt]; ok {
		return name, nil
	}
	entries, err := readDirUnsorted(o.Dir)
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	if o.newest == nil {
		o.newest = make(map[string]string, len(entries))
	}
	for _, e := range entries {
		to, ok := devserver.Recipient(e.Name())
		if ok && e.Name() > o.newest[to] {
			o.newest[to] = e.Name()
		}
	}
	return o.newest[rcpt], nil
}

// readDirUnsorted lists dir in directory order: find compares names and
// needs no order, and os.ReadDir's sort is a large part of listing a
// folder of a thousand messages.
func readDirUnsorted(dir string) ([]os.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// HTTPStats reads the serve package's debug endpoint (GET /stats, JSON).
// With PID set it falls back to /proc for what the endpoint leaves out.
type HTTPStats struct {
	URL    string // e.g. http://127.0.0.1:6060/stats
	PID    int
	Client *http.Client // default: one with a 2s timeout
}

// serveStats is the part of serve.Stats the report uses.
type serveStats struct {
	Sessions   int   `json:"sessions"`
	Goroutines int   `json:"goroutines"`
	RSSBytes   int64 `json:"rss_bytes"`
	CPUNanos   int64 `json:"cpu_ns"`
}

// Stats implements StatsReader.
func (h HTTPStats) Stats(ctx context.Context) (Sample, error) {
	s := unknownSample()
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return s, fmt.Errorf("load: stats: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return s, fmt.Errorf("load: stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("load: stats: %s", resp.Status)
	}
	st := serveStats{Sessions: -1, Goroutines: -1} // a field left out is unknown, not 0
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return s, fmt.Errorf("load: stats: %w", err)
	}
	s.Sessions, s.Goroutines = st.Sessions, st.Goroutines
	if st.RSSBytes > 0 {
		s.RSS = st.RSSBytes
	}
	if st.CPUNanos > 0 {
		s.CPU = time.Duration(st.CPUNanos)
	}
	if h.PID > 0 {
		p, err := Process{PID: h.PID}.Stats(ctx)
		if err != nil {
			return s, err
		}
		if s.CPU < 0 {
			s.CPU = p.CPU
		}
		if s.RSS < 0 {
			s.RSS = p.RSS
		}
	}
	return s, nil
}
