package otp_test

import (
	"testing"

	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) otp.Store { return otp.NewMemoryStore() })
}
