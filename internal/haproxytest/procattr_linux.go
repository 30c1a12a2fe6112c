package haproxytest

import "syscall"

// procAttr makes the kernel kill haproxy if the test binary dies without
// running its cleanups, so no proxy outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
