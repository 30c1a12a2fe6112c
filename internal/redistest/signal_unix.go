//go:build unix

package redistest

import (
	"os"
	"syscall"
)

// The signals that freeze and thaw a server.
var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT
