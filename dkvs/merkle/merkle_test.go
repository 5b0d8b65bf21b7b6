package merkle

import (
	"crypto/sha1"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/kv"
)

type entry struct {
	key  string
	v    kv.Version
	tomb bool
}

func build(depth int, entries []entry) *Tree {
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	b := NewBuilder(depth)
	for _, e := range entries {
		pos := sha1.Sum([]byte(e.key))
		b.Add(Bucket(pos[:], depth), []byte(e.key), e.v, e.tomb)
	}
	return b.Tree(time.Unix(1, 0))
}

func entries(n int) []entry {
	var out []entry
	for i := 0; i < n; i++ {
		out = append(out, entry{key: fmt.Sprintf("key-%d", i), v: kv.Version{Wall: uint64(i + 1)}})
	}
	return out
}

// diff descends from the root into differing nodes only, as anti-entropy
// does, and returns the differing leaves and how many nodes it compared.
func diff(a, b *Tree) (leaves []uint32, compared int) {
	frontier := []uint32{1}
	for len(frontier) > 0 {
		var next []uint32
		for _, n := range frontier {
			compared++
			if a.Node(n) == b.Node(n) {
				continue
			}
			if a.IsLeaf(n) {
				leaves = append(leaves, a.Leaf(n))
			} else {
				next = append(next, 2*n, 2*n+1)
			}
		}
		frontier = next
	}
	return leaves, compared
}

func TestSameEntriesSameTree(t *testing.T) {
	a := build(10, entries(1000))
	shuffled := entries(1000)
	for i := range shuffled { // order of arrival across leaves does not matter
		j := (i * 7919) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	b := build(10, shuffled)
	if a.Root() != b.Root() || a.Root() == (Hash{}) {
		t.Fatal("same entries, different roots")
	}
	if a.Entries != 1000 {
		t.Fatalf("entries %d", a.Entries)
	}
	if Empty(10, time.Time{}).Root() != (Hash{}) {
		t.Fatal("empty tree root not zero")
	}
}

func TestDiffFindsExactlyTheChangedLeaves(t *testing.T) {
	base := entries(5000)
	changed := append([]entry(nil), base...)
	want := map[uint32]bool{}
	mark := func(key string) {
		pos := sha1.Sum([]byte(key))
		want[Bucket(pos[:], 10)] = true
	}
	changed[17].v.Wall += 100 // newer version
	mark(changed[17].key)
	changed[4000].tomb = true // deleted
	mark(changed[4000].key)
	changed = append(changed, entry{key: "extra", v: kv.Version{Wall: 1}}) // one side only
	mark("extra")
	a, b := build(10, base), build(10, changed)
	leaves, compared := diff(a, b)
	if len(leaves) != len(want) {
		t.Fatalf("found %v, want %v", leaves, want)
	}
	for _, l := range leaves {
		if !want[l] {
			t.Fatalf("leaf %d reported but unchanged", l)
		}
	}
	// Descending only into differing branches compares far fewer than the
	// 2047 nodes of the tree.
	if compared > 3*2*10+1 {
		t.Fatalf("compared %d nodes", compared)
	}
}

func TestBucketAndLeaves(t *testing.T) {
	pos := []byte{0xff, 0xff, 0, 0}
	cases := []struct {
		depth int
		want  uint32
	}{{0, 0}, {1, 1}, {10, 1023}, {16, 0xffff}, {20, 0xffff0}}
	for _, tc := range cases {
		if got := Bucket(pos, tc.depth); got != tc.want {
			t.Errorf("depth %d: %d, want %d", tc.depth, got, tc.want)
		}
	}
	tr := Empty(3, time.Time{})
	if f, l := tr.Leaves(1); f != 0 || l != 7 {
		t.Fatalf("root covers %d..%d", f, l)
	}
	if f, l := tr.Leaves(3); f != 4 || l != 7 {
		t.Fatalf("node 3 covers %d..%d", f, l)
	}
	if !tr.IsLeaf(8) || tr.IsLeaf(7) || tr.Leaf(15) != 7 {
		t.Fatal("leaf numbering")
	}
}

func BenchmarkBuild(b *testing.B) {
	es := entries(100000)
	sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
	pos := make([][20]byte, len(es))
	for i, e := range es {
		pos[i] = sha1.Sum([]byte(e.key))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl := NewBuilder(10)
		for j, e := range es {
			bl.Add(Bucket(pos[j][:], 10), []byte(e.key), e.v, e.tomb)
		}
		bl.Tree(time.Time{})
	}
}
