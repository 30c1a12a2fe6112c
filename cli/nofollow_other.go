//go:build !unix

package cli

import "os"

// oNoFollow is not available here.
const oNoFollow = 0

// ownedByOther cannot tell here.
func ownedByOther(os.FileInfo) bool { return false }
