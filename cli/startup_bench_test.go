package cli

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"
)

// BenchmarkStartupToFirstFrame measures what a person waits for: from exec
// of the real binary in an 80x24 terminal to the email screen's first frame
// (dev mail server started, outbox created). Each op is one whole start.
//
//	go test -run '^$' -bench StartupToFirstFrame -benchtime 20x ./cli
func BenchmarkStartupToFirstFrame(b *testing.B) {
	outbox := filepath.Join(b.TempDir(), "outbox")
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(binary, "--outbox", outbox)
		start := time.Now()
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
		if err != nil {
			b.Fatal(err)
		}
		if err := readUntil(tty, []byte("Email")); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		_, _ = tty.Write([]byte{3}) // ctrl+c
		_ = cmd.Wait()
		tty.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/first-frame")
}

// readUntil reads r until want has appeared.
func readUntil(r io.Reader, want []byte) error {
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, want) {
		n, err := r.Read(buf)
		if err != nil {
			return err
		}
		seen = append(seen, buf[:n]...)
	}
	return nil
}
