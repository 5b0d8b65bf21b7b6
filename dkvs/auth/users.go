// Package auth holds the users of a ring and the rules of who may do
// what: a users file (name, rights, key prefixes, hash of a token), its
// parsing, reloading and editing, and the one table that says which right
// each operation needs. The server asks Authorize before it serves a
// request; nothing else decides.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Right is a set of rights.
type Right uint8

// Rights.
const (
	// Read lets a user read the keys under its prefixes, and the servers'
	// counters.
	Read Right = 1 << iota
	// Write lets a user write and delete the keys under its prefixes.
	Write
	// Admin lets a user dump a whole server and change the ring.
	Admin
)

var rightNames = []struct {
	r    Right
	name string
}{{Read, "read"}, {Write, "write"}, {Admin, "admin"}}

// String returns the rights as the users file writes them: "read,write".
func (r Right) String() string {
	var parts []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// ParseRights parses "read,write,admin" (any subset, "-" for none).
func ParseRights(s string) (Right, error) {
	if s == "-" {
		return 0, nil
	}
	var r Right
	for _, p := range strings.Split(s, ",") {
		found := false
		for _, n := range rightNames {
			if p == n.name {
				r |= n.r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: right %q (want read, write, admin, or - for none)", ErrBadFile, p)
		}
	}
	return r, nil
}

// HashSize is the size of a token's hash.
const HashSize = sha256.Size

// User is one line of the users file.
type User struct {
	Name   string
	Rights Right
	// Prefixes are the key prefixes the user may read or write; "" (the
	// file's "*") is every key; none is no key.
	Prefixes []string
	// Hash is the SHA-256 of the user's token.
	Hash [HashSize]byte
}

// Covers reports whether key is under one of the user's prefixes.
func (u *User) Covers(key []byte) bool {
	for _, p := range u.Prefixes {
		if bytes.HasPrefix(key, []byte(p)) {
			return true
		}
	}
	return false
}

// Has reports whether the user has every right of r.
func (u *User) Has(r Right) bool { return u.Rights&r == r }

// line formats the user as the users file holds it.
func (u *User) line() string {
	prefixes := "-"
	if len(u.Prefixes) > 0 {
		ps := make([]string, len(u.Prefixes))
		for i, p := range u.Prefixes {
			ps[i] = p
			if p == "" {
				ps[i] = "*"
			}
		}
		prefixes = strings.Join(ps, ",")
	}
	return fmt.Sprintf("%s %s %s sha256:%s", u.Name, u.Rights, prefixes, hex.EncodeToString(u.Hash[:]))
}

// ErrBadFile is wrapped by every error of a users file that does not
// parse.
var ErrBadFile = errors.New("bad users file")

// MaxNameLen bounds a user's name.
const MaxNameLen = 64

// CheckName reports whether name can be a user's: 1 to 64 letters,
// digits, '.', '_', '-' or '@', so that it needs no quoting in the file,
// a certificate's URI or a RESP command.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: user name %q: 1 to %d characters", ErrBadFile, name, MaxNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-@", c) >= 0
		if !ok {
			return fmt.Errorf("%w: user name %q: only letters, digits and . _ - @", ErrBadFile, name)
		}
	}
	return nil
}

// Table is a parsed users file. It is never changed once made: a reload
// makes a new one.
type Table struct {
	users map[string]*User
}

// Parse reads a users file: one user per line, "NAME RIGHTS PREFIXES
// sha256:HEX", fields separated by spaces or tabs; RIGHTS a comma list of
// read, write, admin (or -); PREFIXES a comma list of key prefixes, * for
// every key, - for none; HEX the SHA-256 of the token. Blank lines and
// lines starting with # are ignored. The first bad line is an error
// wrapping ErrBadFile, with its number.
func Parse(r io.Reader) (*Table, error) {
	t := &Table{users: map[string]*User{}}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := t.users[u.Name]; dup {
			return nil, fmt.Errorf("line %d: %w: user %q twice", n, ErrBadFile, u.Name)
		}
		t.users[u.Name] = u
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w: %w", n+1, ErrBadFile, err)
	}
	return t, nil
}

func parseLine(line string) (*User, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: %d fields, want 4: NAME RIGHTS PREFIXES sha256:HEX", ErrBadFile, len(f))
	}
	if err := CheckName(f[0]); err != nil {
		return nil, err
	}
	u := &User{Name: f[0]}
	var err error
	if u.Rights, err = ParseRights(f[1]); err != nil {
		return nil, err
	}
	if u.Prefixes, err = parsePrefixes(f[2]); err != nil {
		return nil, err
	}
	h, ok := strings.CutPrefix(f[3], "sha256:")
	if !ok {
		return nil, fmt.Errorf("%w: token hash %q: want sha256:HEX", ErrBadFile, f[3])
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != HashSize {
		return nil, fmt.Errorf("%w: token hash: want %d hex digits", ErrBadFile, 2*HashSize)
	}
	copy(u.Hash[:], b)
	return u, nil
}

// parsePrefixes parses the prefix field: "-" none, "*" all ("" in the
// result, which every key starts with).
func parsePrefixes(s string) ([]string, error) {
	if s == "-" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		switch p {
		case "":
			return nil, fmt.Errorf("%w: empty prefix in %q (use * for every key)", ErrBadFile, s)
		case "*":
			p = ""
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefixes parses a comma list of key prefixes as the users file
// holds them ("*" every key, "-" none).
func ParsePrefixes(s string) ([]string, error) { return parsePrefixes(s) }

// Lookup returns the user called name.
func (t *Table) Lookup(name string) (*User, bool) {
	if t == nil {
		return nil, false
	}
	u, ok := t.users[name]
	return u, ok
}

// Users returns the users sorted by name.
func (t *Table) Users() []*User {
	out := make([]*User, 0, len(t.users))
	for _, u := range t.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// With returns a copy of t with u added, or replacing the user of its
// name.
func (t *Table) With(u *User) *Table {
	out := &Table{users: make(map[string]*User, len(t.users)+1)}
	for k, v := range t.users {
		out.users[k] = v
	}
	out.users[u.Name] = u
	return out
}

// Without returns a copy of t without the user called name.
func (t *Table) Without(name string) *Table {
	out := &Table{users: make(map[string]*User, len(t.users))}
	for k, v := range t.users {
		if k != name {
			out.users[k] = v
		}
	}
	return out
}

// Format returns the users file of t, one line per user sorted by name,
// after a comment saying what the fields are.
func (t *Table) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# dkvs users: NAME RIGHTS(read,write,admin) PREFIXES(* all, - none) sha256:HASH-OF-TOKEN\n")
	for _, u := range t.Users() {
		b.WriteString(u.line())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// HashToken returns the hash a users file keeps of token. Tokens are 32
// random bytes (NewToken), so a fast hash is enough: nobody can guess one
// from its hash faster than by trying 2^256 tokens, which no slow
// password hash would change.
func HashToken(token string) [HashSize]byte { return sha256.Sum256([]byte(token)) }

// TokenBytes is the number of random bytes of a token.
const TokenBytes = 32

// NewToken returns a new token: TokenBytes bytes from rnd (crypto/rand's
// Reader in production), in hexadecimal.
func NewToken(rnd io.Reader) (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ErrWrongToken is returned by Verify for an unknown user or a token that
// does not match: the two are not told apart, to the client or in time.
var ErrWrongToken = errors.New("invalid user or token")

// unknownHash is compared against when the user does not exist, so that
// an unknown user costs the same time as a wrong token.
var unknownHash = sha256.Sum256([]byte("dkvs: no such user"))

// Verify checks token against the user called name, in constant time for
// a given token length.
func (t *Table) Verify(name, token string) (*User, error) {
	u, ok := t.Lookup(name)
	want := unknownHash
	if ok {
		want = u.Hash
	}
	got := HashToken(token)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
		return nil, ErrWrongToken
	}
	return u, nil
}

// VerifyToken finds the user whose token is token (RESP's AUTH with one
// argument): every user's hash is compared, in constant time each, so
// the time taken does not depend on which matched. Tokens are 256 random
// bits, so two users never share one.
func (t *Table) VerifyToken(token string) (*User, error) {
	got := HashToken(token)
	var found *User
	for _, u := range t.Users() {
		if subtle.ConstantTimeCompare(got[:], u.Hash[:]) == 1 {
			found = u
		}
	}
	if found == nil {
		return nil, ErrWrongToken
	}
	return found, nil
}
