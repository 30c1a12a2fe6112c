package buildinfo

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"release stamp wins", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: settings("vcs.revision", rev)}, "v1.2.3"},
		{"stamp without build info", "v1.2.3", nil, "v1.2.3"},
		{"go install module@version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go build pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128123834-0123456789ab+dirty"}, Settings: settings("vcs.revision", rev)}, "v0.0.0-20261128123834-0123456789ab+dirty"},
		{"devel build with revision", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", rev, "vcs.modified", "false")}, "0123456789ab"},
		{"devel build with changes", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.modified", "true", "vcs.revision", rev)}, "0123456789ab-dirty"},
		{"short revision kept whole", "", &debug.BuildInfo{Settings: settings("vcs.revision", "abc123")}, "abc123"},
		{"no version and no vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"no build info", "", nil, "(unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := version(tt.stamped, tt.bi); got != tt.want {
				t.Errorf("version(%q, ...) = %q, want %q", tt.stamped, got, tt.want)
			}
		})
	}
}

func TestLine(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	got := line("v1.2.3", &debug.BuildInfo{GoVersion: "go1.99.1"})
	if want := "v1.2.3 go1.99.1 " + platform; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	got = line("v1.2.3", nil)
	if want := "v1.2.3 " + runtime.Version() + " " + platform; got != want {
		t.Errorf("line without build info = %q, want %q", got, want)
	}
}

// TestStampedBinary builds a program with the -X flag the release build
// passes (.goreleaser.yaml), so that a renamed package or variable, which
// makes the linker ignore the flag without a word, fails here.
func TestStampedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the stamped program: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "printversion")
	const stamp = "v9.8.7-test"
	build := exec.Command(goTool, "build", "-o", bin,
		"-ldflags", "-X github.com/otplogin/otplogin/internal/buildinfo.Version="+stamp,
		"./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the stamped program: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 3 || fields[0] != stamp {
		t.Errorf("stamped program printed %q, want \"%s go... os/arch\"", out, stamp)
	}
}
