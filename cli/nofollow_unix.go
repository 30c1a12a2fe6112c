//go:build unix

package cli

import (
	"os"
	"syscall"
)

// oNoFollow makes opening a symlink fail, so a link planted where the log
// goes cannot redirect it.
const oNoFollow = syscall.O_NOFOLLOW

// ownedByOther reports whether fi is another user's file: one planted in a
// shared folder where the log goes, which that user could read.
func ownedByOther(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Geteuid()
}
