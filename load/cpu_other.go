//go:build !unix

package load

import "time"

// selfCPU is unknown here; reports leave CPU figures out when it is 0.
func selfCPU() time.Duration { return 0 }
