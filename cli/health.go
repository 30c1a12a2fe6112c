package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// healthTimeout bounds otplogin health; a container runtime's health check
// has its own, usually longer, timeout.
const healthTimeout = 5 * time.Second

// runHealth asks the operator endpoint of a serve on this host whether it
// is healthy (/healthz) or, with --ready, ready (/readyz): exit status 0 if
// it says yes, 1 with one line saying why if not. It is the container's
// health check, so it reads the same setting serve listens on.
func runHealth(ctx context.Context, c *Config, stdio IO) error {
	if c.MetricsAddr == "" {
		return metricsAddr.fail(errors.New("required: the operator endpoint serve listens on, e.g. 127.0.0.1:23235"))
	}
	path := "/healthz"
	if c.HealthReady {
		path = "/readyz"
	}
	url := "http://" + dialAddr(c.MetricsAddr) + path
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return metricsAddr.fail(err)
	}
	// No proxy from the environment: the endpoint is this host's.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s: %s %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	_, err = fmt.Fprint(stdio.Stdout, string(body))
	return err
}

// dialAddr is where to reach a server listening on addr from this host: an
// address that listens everywhere (":23235", "0.0.0.0:23235", "[::]:23235")
// is reached on loopback.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
