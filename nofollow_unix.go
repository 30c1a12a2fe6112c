//go:build unix

package main

import "syscall"

// oNoFollow makes opening a symlink fail, so a link planted where the log
// goes cannot redirect it.
const oNoFollow = syscall.O_NOFOLLOW
