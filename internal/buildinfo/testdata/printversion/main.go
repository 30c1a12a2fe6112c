// Command printversion prints buildinfo.String(), so that the test can
// check what a binary built with the release build's -X flag reports.
package main

import (
	"fmt"

	"github.com/otplogin/otplogin/internal/buildinfo"
)

func main() { fmt.Println(buildinfo.String()) }
