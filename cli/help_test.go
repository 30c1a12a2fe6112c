package cli

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// helpCommands are the commands whose flags come from the tables.
var helpCommands = []struct {
	args []string
	cmd  commands
}{
	{nil, cmdLocal},
	{[]string{"serve"}, cmdServe},
	{[]string{"mail-test"}, cmdMailTest},
	{[]string{"load"}, cmdLoad},
}

// flagsOf lists the flags of command, and the variables it reads.
func flagsOf(command commands) (flags, vars []string) {
	for _, s := range slices.Concat(table, commandFlags) {
		if s.For&command == 0 {
			continue
		}
		if s.Flag != "" {
			flags = append(flags, s.flagName())
		}
		if s.Env != "" {
			vars = append(vars, s.Env)
		}
	}
	return flags, vars
}

// TestHelp checks that each command's --help goes to stdout, exits 0 and
// lists every flag and variable the command takes (those without a flag
// in a paragraph of their own).
func TestHelp(t *testing.T) {
	for _, c := range helpCommands {
		for _, help := range []string{"--help", "-h"} {
			t.Run(strings.Join(append(slices.Clone(c.args), help), " "), func(t *testing.T) {
				t.Parallel()
				r := runBinary(t, nil, append(slices.Clone(c.args), help)...)
				if r.status != 0 || r.stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.status, r.stderr)
				}
				flags, vars := flagsOf(c.cmd)
				for _, want := range slices.Concat(flags, vars, []string{"USAGE", "EXAMPLES", "otplogin"}) {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("help does not show %s:\n%s", want, r.stdout)
					}
				}
				if strings.Contains(r.stdout, "\x1b[") {
					t.Errorf("help to a pipe has escape sequences:\n%q", r.stdout)
				}
			})
		}
	}
	t.Run("root lists the commands", func(t *testing.T) {
		r := runBinary(t, nil, "help")
		for _, want := range []string{"serve", "mail-test", "load", "version", "completion", "man"} {
			if r.status != 0 || !strings.Contains(r.stdout, "    "+want) {
				t.Errorf("otplogin help (exit %d) does not list %s:\n%s", r.status, want, r.stdout)
			}
		}
	})
}

// TestVersion checks --version and the version command: one line on stdout.
func TestVersion(t *testing.T) {
	var lines []string
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		r := runBinary(t, nil, args...)
		if r.status != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "otplogin version ") || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want one version line on stdout", args, r.status, r.stdout, r.stderr)
		}
		lines = append(lines, r.stdout)
	}
	if lines[0] != lines[2] {
		t.Errorf("--version says %q, version says %q", lines[0], lines[2])
	}
}

// TestCompletion checks the completion scripts for bash, zsh and fish, and
// that completing a command's flags offers every one of them: the scripts
// ask the binary (otplogin __complete ...) for the flags.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "complete -o default -F __start_otplogin otplogin",
		"zsh":  "#compdef otplogin",
		"fish": "complete -c otplogin",
	} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, nil, "completion", shell)
			if r.status != 0 || r.stderr != "" || !strings.Contains(r.stdout, marker) || !strings.Contains(r.stdout, "__complete") {
				t.Fatalf("exit %d, stderr %q, want a %s script holding %q:\n%.300s", r.status, r.stderr, shell, marker, r.stdout)
			}
			if _, err := exec.LookPath(shell); err == nil {
				// The shell itself must accept the script.
				script := t.TempDir() + "/otplogin." + shell
				if err := os.WriteFile(script, []byte(r.stdout), 0o600); err != nil {
					t.Fatal(err)
				}
				check := map[string][]string{"bash": {"-n", script}, "zsh": {"-n", script}, "fish": {"--no-execute", script}}[shell]
				if out, err := exec.Command(shell, check...).CombinedOutput(); err != nil {
					t.Errorf("%s refuses the script: %v\n%s", shell, err, out)
				}
			}
		})
	}
	for _, c := range helpCommands {
		t.Run("flags of "+strings.Join(append([]string{"otplogin"}, c.args...), " "), func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, nil, slices.Concat([]string{"__complete"}, c.args, []string{"--"})...)
			if r.status != 0 {
				t.Fatalf("exit %d, stderr %q", r.status, r.stderr)
			}
			offered := map[string]bool{}
			for _, line := range strings.Split(r.stdout, "\n") {
				name, _, _ := strings.Cut(line, "\t")
				offered[name] = true
			}
			flags, _ := flagsOf(c.cmd)
			for _, f := range flags {
				if !offered[f] {
					t.Errorf("completion does not offer %s:\n%s", f, r.stdout)
				}
			}
		})
	}
}

// TestManPage checks that otplogin man prints a man page on stdout with
// every command, every flag, every variable and the exit statuses.
func TestManPage(t *testing.T) {
	r := runBinary(t, nil, "man")
	if r.status != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, ".TH OTPLOGIN 1") {
		t.Fatalf("exit %d, stderr %q; want a man page on stdout:\n%.300s", r.status, r.stderr, r.stdout)
	}
	var want []string
	for _, c := range helpCommands {
		flags, vars := flagsOf(c.cmd)
		want = slices.Concat(want, flags, vars, c.args)
	}
	want = append(want, ".SH ENVIRONMENT", ".SH EXIT STATUS", "130", "143")
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("man page lacks %s", w)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command("man", "-l", "-")
		cmd.Stdin = strings.NewReader(r.stdout)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=100")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OTPLOGIN_MAX_SESSIONS") {
			t.Errorf("man -l cannot render it: %v\n%.500s", err, out)
		}
	}
}
