// Package ring places keys on servers: the SHA-1 consistent-hash ring of
// cs202.md section 2.
//
// Every server owns COUNT nodes; node i of server "IP PORT" sits at
// SHA1("IP PORT i"). A key's servers are found by hashing the key and
// walking clockwise from the first node at or after that hash, taking each
// server the first time one of its nodes is met. The package does no I/O;
// the hash is injectable so tests can build rings by hand.
package ring

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"sort"
	"strconv"

	"github.com/dkvs/dkvs/dkvs/config"
)

// HashSize is the size of a ring position in bytes.
const HashSize = 20

// Hash is a position on the ring.
type Hash [HashSize]byte

// String returns the position as 40 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Next returns the position after h, wrapping from the last to zero: a
// node at pos owns the positions (prev, pos], which are the half-open
// range [prev.Next(), pos.Next()) that storage scans by.
func (h Hash) Next() Hash {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			break
		}
	}
	return h
}

// HashFunc maps bytes to a ring position.
type HashFunc func([]byte) Hash

// SHA1 is the ring's hash function.
func SHA1(b []byte) Hash { return sha1.Sum(b) }

// Node is one virtual node on the ring.
type Node struct {
	Hash   Hash
	Server int // index into Servers()
	ID     int // 1..COUNT
}

// Ring is an immutable consistent-hash ring. It is safe for concurrent use.
type Ring struct {
	servers []config.Server
	nodes   []Node
	hash    HashFunc
}

// Option configures a Ring.
type Option func(*Ring)

// WithHash replaces SHA-1, for tests.
func WithHash(h HashFunc) Option { return func(r *Ring) { r.hash = h } }

// New builds the ring of the given servers.
func New(servers []config.Server, opts ...Option) *Ring {
	r := &Ring{servers: append([]config.Server(nil), servers...), hash: SHA1}
	for _, o := range opts {
		o(r)
	}
	for si, s := range r.servers {
		for id := 1; id <= s.Count; id++ {
			name := s.IP + " " + strconv.Itoa(int(s.Port)) + " " + strconv.Itoa(id)
			r.nodes = append(r.nodes, Node{Hash: r.hash([]byte(name)), Server: si, ID: id})
		}
	}
	sort.SliceStable(r.nodes, func(i, j int) bool {
		return bytes.Compare(r.nodes[i].Hash[:], r.nodes[j].Hash[:]) < 0
	})
	return r
}

// Servers returns the servers in servers.txt order. The slice must not be
// modified.
func (r *Ring) Servers() []config.Server { return r.servers }

// Nodes returns the nodes in ring order. The slice must not be modified.
func (r *Ring) Nodes() []Node { return r.nodes }

// KeyHash returns the ring position of a key.
func (r *Ring) KeyHash(key []byte) Hash { return r.hash(key) }

// First returns the index in Nodes() of the first node whose hash is at or
// after h, wrapping to 0.
func (r *Ring) First(h Hash) int {
	i := sort.Search(len(r.nodes), func(i int) bool {
		return bytes.Compare(r.nodes[i].Hash[:], h[:]) >= 0
	})
	if i == len(r.nodes) {
		i = 0
	}
	return i
}

// Preference returns the key's first n distinct servers clockwise (its home
// replicas), as indexes into Servers(). With n above the number of servers
// it returns all of them.
func (r *Ring) Preference(key []byte, n int) []int {
	return r.PreferenceAt(r.First(r.hash(key)), n)
}

// PreferenceAt is Preference starting from node index start.
func (r *Ring) PreferenceAt(start, n int) []int {
	if n > len(r.servers) {
		n = len(r.servers)
	}
	if n <= 0 || len(r.nodes) == 0 {
		return nil
	}
	out := make([]int, 0, n)
	var small [64]bool
	var seen []bool
	if len(r.servers) <= len(small) {
		seen = small[:len(r.servers)]
	} else {
		seen = make([]bool, len(r.servers))
	}
	for k := 0; k < len(r.nodes) && len(out) < n; k++ {
		s := r.nodes[(start+k)%len(r.nodes)].Server
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Walk returns every server in clockwise order from the key: the home
// replicas first, then the fallbacks used by sloppy quorum.
func (r *Ring) Walk(key []byte) []int { return r.Preference(key, len(r.servers)) }
