// Package buildinfo names the running build for `otplogin version`: the
// version a release build stamps in, or else what the Go toolchain
// recorded (the module version of `go install`, or the VCS revision of a
// `go build` in a clone).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is the release version, stamped in by the release build
// (.goreleaser.yaml):
//
//	go build -ldflags "-X github.com/otplogin/otplogin/internal/buildinfo.Version=v1.2.3"
//
// It is empty in any other build. It is a variable only because -X can set
// nothing else; nothing assigns it at run time.
var Version string

// String names the build for `otplogin version` and bug reports: the
// version, the Go version and the platform, such as
// "v1.2.3 go1.26.8 linux/amd64".
func String() string {
	bi, _ := debug.ReadBuildInfo()
	return line(Version, bi)
}

// line is String with the stamp and the build info as arguments, so that
// tests can give it what other builds would record.
func line(stamped string, bi *debug.BuildInfo) string {
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	return version(stamped, bi) + " " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// version picks the most precise name the build has: the release stamp,
// then the module version (go install module@v1.2.3, or the pseudo-version
// go build derives from the VCS), then the bare VCS revision.
func version(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return "(unknown)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "(devel)"
	}
	const shortRevision = 12 // as Go's pseudo-versions abbreviate it
	if len(revision) > shortRevision {
		revision = revision[:shortRevision]
	}
	if modified == "true" {
		revision += "-dirty"
	}
	return revision
}
