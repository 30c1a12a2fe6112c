//go:build !unix

package redistest

import "os"

// No SIGSTOP here: Freeze fails the test.
var sigStop, sigCont os.Signal
