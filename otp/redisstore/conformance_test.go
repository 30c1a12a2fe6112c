package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/storetest"
)

// TestConformance runs the suite every otp.Store must pass against one
// redis-server, each case with a key prefix of its own.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) otp.Store {
		return open(t, srv, Options{Prefix: fmt.Sprintf("conf%d:", n.Add(1))})
	})
}
