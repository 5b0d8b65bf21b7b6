// Package merkle builds the hash trees that anti-entropy compares.
//
// A tree has 2^Depth leaves. Each entry (a key and the version of its
// record) falls into the leaf given by the top Depth bits of the key's
// ring position; a leaf's hash is the SHA-256 of its entries in key order,
// and an inner node's hash is the SHA-256 of its two children. Empty
// subtrees hash to zero, so two replicas that hold the same entries have
// the same tree, and a difference can be found by descending only into
// the branches whose hashes differ. Nodes are numbered in heap order: 1 is
// the root, the children of i are 2i and 2i+1, and leaf b is node
// 2^Depth + b. The package does no I/O.
package merkle

import (
	"encoding/binary"
	"hash"
	"time"

	sha256 "github.com/minio/sha256-simd"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// HashSize is the size of a node hash.
const HashSize = 32

// Hash is a node hash; the zero Hash is an empty subtree.
type Hash [HashSize]byte

// MaxDepth bounds the depth (2^20 leaves).
const MaxDepth = 20

// Bucket returns the leaf of a key from its ring position: the top depth
// bits of the position.
func Bucket(pos []byte, depth int) uint32 {
	if depth == 0 {
		return 0
	}
	return binary.BigEndian.Uint32(pos[:4]) >> (32 - depth)
}

// Builder accumulates entries. Entries of one leaf must be added in key
// order so both replicas hash them alike (storage's ring index yields a
// leaf's entries by position: anti-entropy sorts them first).
type Builder struct {
	depth   int
	leaves  []hash.Hash
	entries int
	scratch []byte
}

// NewBuilder returns a builder for a tree of the given depth (0..MaxDepth).
func NewBuilder(depth int) *Builder {
	if depth < 0 || depth > MaxDepth {
		panic("merkle: depth out of range") // a programming error, never input
	}
	return &Builder{depth: depth, leaves: make([]hash.Hash, 1<<depth)}
}

// Add adds an entry to a leaf.
func (b *Builder) Add(bucket uint32, key []byte, v kv.Version, tombstone bool) {
	h := b.leaves[bucket]
	if h == nil {
		h = sha256.New()
		b.leaves[bucket] = h
	}
	s := binary.AppendUvarint(b.scratch[:0], uint64(len(key)))
	s = append(s, key...)
	s = v.AppendBinary(s)
	if tombstone {
		s = append(s, 1)
	} else {
		s = append(s, 0)
	}
	h.Write(s)
	b.scratch = s
	b.entries++
}

// Tree finishes the tree. The builder must not be used afterwards.
func (b *Builder) Tree(built time.Time) *Tree {
	n := 1 << b.depth
	t := &Tree{Depth: b.depth, Built: built, Entries: b.entries, nodes: make([]Hash, 2*n)}
	for i, h := range b.leaves {
		if h != nil {
			copy(t.nodes[n+i][:], h.Sum(nil))
		}
	}
	var buf [2 * HashSize]byte
	for i := n - 1; i >= 1; i-- {
		l, r := t.nodes[2*i], t.nodes[2*i+1]
		if l == (Hash{}) && r == (Hash{}) {
			continue
		}
		copy(buf[:HashSize], l[:])
		copy(buf[HashSize:], r[:])
		t.nodes[i] = sha256.Sum256(buf[:])
	}
	return t
}

// Tree is a finished hash tree. It is immutable and safe to share.
type Tree struct {
	Depth   int
	Built   time.Time // when the entries were read
	Entries int
	nodes   []Hash
}

// Empty returns the tree of no entries.
func Empty(depth int, built time.Time) *Tree { return NewBuilder(depth).Tree(built) }

// Node returns the hash of node i (1 <= i < 2^(Depth+1)).
func (t *Tree) Node(i uint32) Hash { return t.nodes[i] }

// Root returns the root hash.
func (t *Tree) Root() Hash { return t.nodes[1] }

// IsLeaf reports whether node i is a leaf.
func (t *Tree) IsLeaf(i uint32) bool { return i >= 1<<t.Depth }

// Leaf returns the bucket of leaf node i.
func (t *Tree) Leaf(i uint32) uint32 { return i - 1<<t.Depth }

// Leaves returns the buckets under node i, as a range [first, last].
func (t *Tree) Leaves(i uint32) (first, last uint32) {
	lo, hi := i, i
	for lo < 1<<t.Depth {
		lo, hi = 2*lo, 2*hi+1
	}
	return t.Leaf(lo), t.Leaf(hi)
}
