package serve

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	gossh "golang.org/x/crypto/ssh"
)

// ErrHostKey matches every error about the host key file, so that a caller
// can name the setting that chose the file.
var ErrHostKey = errors.New("host key")

// DefaultHostKeyPath is ssh_host_ed25519_key in the user's config directory
// (e.g. ~/.config/otplogin/), or in the working directory if there is none.
func DefaultHostKeyPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "ssh_host_ed25519_key"
	}
	return filepath.Join(dir, "otplogin", "ssh_host_ed25519_key")
}

// LoadHostKey reads the SSH host key at path. When there is no file there it
// generates an ed25519 key and writes it (mode 0600, missing directories
// 0700), so the server keeps the same identity across restarts; replicas
// that start at once on a new shared file all get the one key written. An
// unreadable or unparsable file is an error naming the path: the server must
// never replace a key that clients have already learned. So is a file that
// other users may read, as sshd has it: whoever reads the key can
// impersonate the server.
func LoadHostKey(path string) (gossh.Signer, error) {
	signer, err := loadHostKey(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrHostKey, path, err)
	}
	return signer, nil
}

func loadHostKey(path string) (gossh.Signer, error) {
	data, err := readHostKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createHostKey(path)
	}
	if err != nil {
		return nil, err
	}
	return gossh.ParsePrivateKey(data)
}

func readHostKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("mode %04o lets other users read it; chmod 600 it", perm)
	}
	return io.ReadAll(io.LimitReader(f, 64<<10)) // a key is a few hundred bytes
}

func createHostKey(path string) (gossh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "otplogin host key")
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Written in full under a temporary name (0600), then linked into place:
	// nobody ever reads half a key, and the link fails if a key exists, so
	// one that another replica published meanwhile is read, not replaced.
	f, err := os.CreateTemp(dir, ".otplogin-host-key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(pem.EncodeToMemory(block))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Link(f.Name(), path)
	}
	if errors.Is(werr, fs.ErrExist) {
		return loadHostKey(path)
	}
	if werr != nil {
		return nil, werr
	}
	return gossh.NewSignerFromKey(priv)
}
