//go:build !linux

package haproxytest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
