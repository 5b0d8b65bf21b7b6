package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNoUser is returned by Delete for a user the file does not have.
var ErrNoUser = errors.New("no such user")

// ReadFile parses the users file at path; a file that does not exist is
// an empty table (the first Add creates it).
func ReadFile(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Table{users: map[string]*User{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	t, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return t, nil
}

// WriteFile replaces the users file at path with t, atomically (a new
// file renamed over the old), readable by its owner only: a server
// polling it never reads half a file.
func WriteFile(path string, t *Table) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(t.Format()); err != nil {
		tmp.Close()
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	return nil
}

// Add gives the user called name a new token and the rights and
// prefixes given (replacing the user if it exists) in the users file at
// path, and returns the token: it is not kept anywhere, only its hash.
func Add(path, name string, rights Right, prefixes []string, rnd io.Reader) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	t, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	token, err := NewToken(rnd)
	if err != nil {
		return "", err
	}
	u := &User{Name: name, Rights: rights, Prefixes: prefixes, Hash: HashToken(token)}
	if err := WriteFile(path, t.With(u)); err != nil {
		return "", err
	}
	return token, nil
}

// Delete removes the user called name from the users file at path.
func Delete(path, name string) error {
	t, err := ReadFile(path)
	if err != nil {
		return err
	}
	if _, ok := t.Lookup(name); !ok {
		return fmt.Errorf("%w: %q in %s", ErrNoUser, name, path)
	}
	return WriteFile(path, t.Without(name))
}

// List writes the users of the file at path, one per line: name, rights,
// prefixes (no hashes).
func List(w io.Writer, path string) error {
	t, err := ReadFile(path)
	if err != nil {
		return err
	}
	for _, u := range t.Users() {
		f := bytes.Fields([]byte(u.line()))
		if _, err := fmt.Fprintf(w, "%s %s %s\n", f[0], f[1], f[2]); err != nil {
			return err
		}
	}
	return nil
}
