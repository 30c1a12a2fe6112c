package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/storetest"
)

// TestConformance runs the suite every otp.Store must pass against each
// deployment Open accepts, each case with a key prefix of its own: one
// redis-server, a Redis Cluster of three masters (every script touches keys
// of one slot, which a Cluster refuses otherwise), and the master of a
// Sentinel group found through its Sentinels.
func TestConformance(t *testing.T) {
	deployments := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"server", func(t *testing.T) string { return redistest.Start(t).URL() }},
		{"cluster", func(t *testing.T) string { return redistest.StartCluster(t, 3, 0).URL() }},
		{"sentinel", func(t *testing.T) string { return redistest.StartSentinel(t).URL() }},
	}
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			url := d.url(t)
			var n atomic.Int64
			storetest.Run(t, func(t *testing.T) otp.Store {
				return openURL(t, url, Options{Prefix: fmt.Sprintf("conf%d:", n.Add(1))})
			})
		})
	}
}
