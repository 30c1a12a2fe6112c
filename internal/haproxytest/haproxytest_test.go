package haproxytest

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProxyV2: a connection through the proxy reaches the backend behind
// a PROXY v2 header that names the real client, and health checks mark a
// backend that is gone as down.
func TestProxyV2(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sources := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				hdr := make([]byte, 16)
				if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:12]) != "\r\n\r\n\x00\r\nQUIT\n" {
					return
				}
				body := make([]byte, binary.BigEndian.Uint16(hdr[14:16]))
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
				_, _ = io.WriteString(c, "SSH-2.0-test\r\n")
				if hdr[12]&0x0f == 1 && hdr[13]>>4 == 1 { // PROXY, IPv4
					sources <- net.IP(body[:4]).String()
				}
			}()
		}
	}()
	p := Start(t, Config{Backends: []string{l.Addr().String()}})
	p.WaitState(t, "r1", "UP")
	if !strings.Contains(p.Config(), "send-proxy-v2") {
		t.Errorf("config lacks send-proxy-v2:\n%s", p.Config())
	}

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case src := <-sources:
			if src == "127.0.0.2" {
				l.Close()
				p.WaitState(t, "r1", "DOWN")
				return
			}
			// a health check, from haproxy's own address
		case <-timeout:
			t.Fatal("the backend never saw a PROXY header naming 127.0.0.2")
		}
	}
}
