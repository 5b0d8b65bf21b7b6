package ring

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/config"
)

func local(spec ...int) []config.Server {
	var s []config.Server
	for i := 0; i < len(spec); i += 2 {
		s = append(s, config.Server{IP: "127.0.0.1", Port: uint16(spec[i]), Count: spec[i+1]})
	}
	return s
}

func ports(r *Ring, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, r.Servers()[i].Addr())
	}
	return out
}

func TestNodeHash(t *testing.T) {
	r := New(local(1234, 1))
	if got := r.Nodes()[0].Hash.String(); got != "aa66f3e5a8d9cdc5c0bd49708bc59847e6915634" {
		t.Fatalf("SHA1(\"127.0.0.1 1234 1\") = %s", got)
	}
}

func TestRingOrderThreeServers(t *testing.T) {
	r := New(local(1234, 1, 1235, 1, 1236, 1))
	want := []struct {
		prefix string
		port   uint16
	}{{"93149f86", 1236}, {"aa66f3e5", 1234}, {"c484ea9b", 1235}}
	for i, n := range r.Nodes() {
		if !strings.HasPrefix(n.Hash.String(), want[i].prefix) || r.Servers()[n.Server].Port != want[i].port {
			t.Errorf("node %d: %s %d, want %s… %d", i, n.Hash, r.Servers()[n.Server].Port, want[i].prefix, want[i].port)
		}
	}
	full := []string{
		"93149f866bf3acc9710375cb46706bf09960a6ab",
		"aa66f3e5a8d9cdc5c0bd49708bc59847e6915634",
		"c484ea9b3b14d139b1456032a49990367b857fe6",
	}
	for i, n := range r.Nodes() {
		if n.Hash.String() != full[i] {
			t.Errorf("node %d: %s, want %s", i, n.Hash, full[i])
		}
	}
}

func TestVectors(t *testing.T) {
	three := local(1234, 1, 1235, 1, 1236, 1)
	mixed := []config.Server{
		{IP: "127.0.0.1", Port: 1234, Count: 1},
		{IP: "192.168.1.10", Port: 1235, Count: 2},
		{IP: "8.8.8.8", Port: 1236, Count: 3},
	}
	cases := []struct {
		name    string
		servers []config.Server
		key     string
		n       int
		want    []string // full order, or a prefix when first is set
		first   bool
		set     bool
	}{
		{"key42", three, "key42", 3, []string{"127.0.0.1:1235", "127.0.0.1:1236", "127.0.0.1:1234"}, false, false},
		{"somekey", three, "somekey", 3, []string{"127.0.0.1:1236"}, true, false},
		{"somekey12", three, "somekey12", 3, []string{"127.0.0.1:1234"}, true, false},
		{"my-key", mixed, "my-key", 3, []string{"127.0.0.1:1234", "8.8.8.8:1236", "192.168.1.10:1235"}, false, false},
		{"my_key", mixed, "my_key", 3, []string{"8.8.8.8:1236", "127.0.0.1:1234", "192.168.1.10:1235"}, false, false},
		{"a-key", mixed, "a-key", 3, []string{"192.168.1.10:1235", "8.8.8.8:1236", "127.0.0.1:1234"}, false, false},
		{"coucou", local(1234, 3, 1235, 3, 1236, 3), "coucou", 3, []string{"127.0.0.1:1236", "127.0.0.1:1235", "127.0.0.1:1234"}, false, false},
		{"a four", local(1234, 1, 1235, 2, 1236, 3, 1237, 2), "a", 3, []string{"127.0.0.1:1234", "127.0.0.1:1235", "127.0.0.1:1236"}, false, true},
		{"cc four", local(1234, 1, 1235, 2, 1236, 3, 1237, 2), "cc", 3, []string{"127.0.0.1:1235", "127.0.0.1:1236", "127.0.0.1:1237"}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New(tc.servers)
			got := ports(r, r.Preference([]byte(tc.key), tc.n))
			if len(got) != tc.n {
				t.Fatalf("got %d servers, want %d", len(got), tc.n)
			}
			switch {
			case tc.first:
				got = got[:len(tc.want)]
			case tc.set:
				sort.Strings(got)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFourServerRingOrder(t *testing.T) {
	r := New(local(1234, 1, 1235, 2, 1236, 3, 1237, 2))
	want := []struct {
		prefix string
		port   uint16
	}{
		{"05f92907", 1237}, {"1bcd2db5", 1235}, {"413518e3", 1237}, {"5f262687", 1236},
		{"93149f86", 1236}, {"aa66f3e5", 1234}, {"c484ea9b", 1235}, {"ee482fd6", 1236},
	}
	if len(r.Nodes()) != len(want) {
		t.Fatalf("%d nodes, want %d", len(r.Nodes()), len(want))
	}
	for i, n := range r.Nodes() {
		if !strings.HasPrefix(n.Hash.String(), want[i].prefix) || r.Servers()[n.Server].Port != want[i].port {
			t.Errorf("node %d: %s (%d), want %s… (%d)", i, n.Hash, r.Servers()[n.Server].Port, want[i].prefix, want[i].port)
		}
	}
}

func TestNAboveServers(t *testing.T) {
	r := New(local(1234, 1, 1235, 1, 1236, 1))
	for _, n := range []int{3, 4, 7, 254} {
		if got := r.Preference([]byte("x"), n); len(got) != 3 {
			t.Errorf("n=%d: %d servers", n, len(got))
		}
	}
	if got := r.Preference([]byte("x"), 0); len(got) != 0 {
		t.Errorf("n=0: %v", got)
	}
	w := r.Walk([]byte("key42"))
	if !reflect.DeepEqual(ports(r, w), []string{"127.0.0.1:1235", "127.0.0.1:1236", "127.0.0.1:1234"}) {
		t.Errorf("walk: %v", ports(r, w))
	}
}

// TestInjectedHash builds a ring whose positions are chosen by hand, to
// check the walk itself: wrap-around and skipping of a server already taken.
func TestInjectedHash(t *testing.T) {
	pos := map[string]uint32{
		"127.0.0.1 1 1": 100, "127.0.0.1 1 2": 300,
		"127.0.0.1 2 1": 200,
		"127.0.0.1 3 1": 400,
	}
	h := func(b []byte) Hash {
		var out Hash
		v, ok := pos[string(b)]
		if !ok {
			fmt.Sscanf(string(b), "k%d", &v)
		}
		binary.BigEndian.PutUint32(out[:], v)
		return out
	}
	r := New(local(1, 2, 2, 1, 3, 1), WithHash(h))
	cases := []struct {
		key  string
		want []uint16
	}{
		{"k50", []uint16{1, 2, 3}},
		{"k100", []uint16{1, 2, 3}}, // exactly on a node
		{"k101", []uint16{2, 1, 3}}, // node 300 of server 1 comes after 200
		{"k250", []uint16{1, 3, 2}}, // then wraps to 100 (server 1 skipped), 200
		{"k350", []uint16{3, 1, 2}},
		{"k401", []uint16{1, 2, 3}}, // past the last node: wrap
	}
	for _, tc := range cases {
		var got []uint16
		for _, s := range r.Preference([]byte(tc.key), 3) {
			got = append(got, r.Servers()[s].Port)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestDistinctAndStable(t *testing.T) {
	r := New(local(1, 3, 2, 5, 3, 1, 4, 2, 5, 4))
	for i := 0; i < 2000; i++ {
		key := []byte(fmt.Sprintf("key-%d", i))
		p := r.Preference(key, 3)
		if len(p) != 3 || p[0] == p[1] || p[1] == p[2] || p[0] == p[2] {
			t.Fatalf("%s: %v", key, p)
		}
		if !reflect.DeepEqual(p, r.Preference(key, 3)) {
			t.Fatalf("not stable")
		}
		if sha1.Sum(key) != r.KeyHash(key) {
			t.Fatalf("KeyHash")
		}
	}
}

func BenchmarkPreference(b *testing.B) {
	r := New(local(1, 3, 2, 5, 3, 1, 4, 2, 5, 4))
	key := []byte("some-benchmark-key")
	for i := 0; i < b.N; i++ {
		r.Preference(key, 3)
	}
}

func TestHashNext(t *testing.T) {
	parse := func(s string) Hash {
		var h Hash
		if n, err := hex.Decode(h[:], []byte(s)); err != nil || n != HashSize {
			t.Fatalf("%s: %v", s, err)
		}
		return h
	}
	for _, c := range []struct{ in, want string }{
		{"0000000000000000000000000000000000000000", "0000000000000000000000000000000000000001"},
		{"00000000000000000000000000000000000000ff", "0000000000000000000000000000000000000100"},
		{"01ffffffffffffffffffffffffffffffffffffff", "0200000000000000000000000000000000000000"},
		{"ffffffffffffffffffffffffffffffffffffffff", "0000000000000000000000000000000000000000"},
	} {
		if got := parse(c.in).Next(); got != parse(c.want) {
			t.Errorf("%s.Next() = %s, want %s", c.in, got, c.want)
		}
	}
}
