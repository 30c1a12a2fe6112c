// Package httpserve runs the small HTTP servers an operator reads (metrics,
// health, the debug endpoint) until their context ends.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// shutdownGrace is how long requests in flight get once ctx ends; every
// handler served here answers in well under it.
const shutdownGrace = time.Second

// Serve serves h on l until ctx ends, then shuts down within a second and
// returns nil. It returns an error only if l fails. It closes l.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// HostIsLoopback reports whether a request's Host (with or without a port)
// is "localhost" or a loopback IP address.
func HostIsLoopback(hostport string) bool {
	host := hostOf(hostport)
	if isLocalhost(host) {
		return true
	}
	ip, ok := ipOf(host)
	return ok && ip.IsLoopback()
}

// HostIsAddress reports whether a request's Host is "localhost" or any IP
// address: not a name that DNS resolves. A web page the operator opens can
// point a name of its own at a private or loopback address (DNS rebinding)
// and read an endpoint there from the browser, but the browser then sends
// that name as the Host; it cannot send a bare IP address for a name.
func HostIsAddress(hostport string) bool {
	host := hostOf(hostport)
	_, ok := ipOf(host)
	return ok || isLocalhost(host)
}

func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	if len(hostport) > 1 && hostport[0] == '[' && hostport[len(hostport)-1] == ']' {
		return hostport[1 : len(hostport)-1] // "[::1]" without a port
	}
	return hostport
}

func isLocalhost(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

// ipOf parses an IP address without a zone (a zone names an interface of
// the client's, never this server).
func ipOf(host string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
