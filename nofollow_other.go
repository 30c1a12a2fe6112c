//go:build !unix

package main

// oNoFollow is not available here.
const oNoFollow = 0
