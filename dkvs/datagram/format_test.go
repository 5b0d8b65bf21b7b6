package datagram

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	long := strings.Repeat("k", MaxKeySize)
	cases := []struct {
		in         string
		kind       Kind
		key, value string
		err        error
	}{
		{"", KindDump, "", "", nil},
		{"a", KindGet, "a", "", nil},
		{"a b\n", KindGet, "a b\n", "", nil},
		{long, KindGet, long, "", nil},
		{long + "k", KindGet, long + "k", "", ErrKeyTooLong},
		{"\x00", KindPut, "", "", ErrEmptyKey},
		{"\x00v", KindPut, "", "v", ErrEmptyKey},
		{"k\x00", KindPut, "k", "", nil},
		{"k\x00v", KindPut, "k", "v", nil},
		{"k\x00v\x00w", KindPut, "k", "v\x00w", nil},
		{long + "\x00" + strings.Repeat("v", MaxValueSize), KindPut, long, strings.Repeat("v", MaxValueSize), nil},
		{long + "k\x00v", KindPut, long + "k", "v", ErrKeyTooLong},
		{"k\x00" + strings.Repeat("v", MaxValueSize+1), KindPut, "k", strings.Repeat("v", MaxValueSize+1), ErrValueTooBig},
	}
	for _, c := range cases {
		r, err := Parse([]byte(c.in))
		if r.Kind != c.kind || string(r.Key) != c.key || string(r.Value) != c.value || !errors.Is(err, c.err) {
			t.Errorf("Parse(%.20q) = %v %.20q %.20q %v; want %v %.20q %.20q %v", c.in, r.Kind, r.Key, r.Value, err, c.kind, c.key, c.value, c.err)
		}
	}
}

func TestEncodeDump(t *testing.T) {
	v := func(n int) []byte { return bytes.Repeat([]byte("v"), n) }
	h := len(DumpHeader(1)) // 27 bytes; 28 for two pairs
	cases := []struct {
		name  string
		pairs []Pair
		sizes []int // datagram sizes
	}{
		{"none", nil, []int{len("storing 0 key-value pairs:\n")}},
		{"one", []Pair{{[]byte("a"), []byte("b")}}, []int{len("storing 1 key-value pairs:\na --> b\n")}},
		{"exactly full", []Pair{{[]byte("a"), v(MaxDatagram - h - 7)}},
			[]int{MaxDatagram}}, // "a --> " and "\n" are 7 bytes
		{"one byte over", []Pair{{[]byte("a"), v(MaxDatagram - h - 6)}},
			[]int{h, MaxDatagram - h + 1}},
		{"biggest line", []Pair{{[]byte("a"), v(MaxValueSize)}, {[]byte("b"), v(MaxValueSize)}},
			[]int{h + 7 + MaxValueSize, 7 + MaxValueSize}},
	}
	for _, c := range cases {
		dgs := EncodeDump(c.pairs)
		var sizes []int
		for _, d := range dgs {
			sizes = append(sizes, len(d))
		}
		if fmt.Sprint(sizes) != fmt.Sprint(c.sizes) {
			t.Errorf("%s: datagram sizes %v, want %v", c.name, sizes, c.sizes)
		}
	}
	if !Dumpable(bytes.Repeat([]byte("k"), MaxKeySize), v(MaxDatagram-6-MaxKeySize)) ||
		Dumpable(bytes.Repeat([]byte("k"), MaxKeySize), v(MaxValueSize)) ||
		Dumpable([]byte("k"), v(MaxValueSize+1)) {
		t.Error("Dumpable limits wrong")
	}
}

// FuzzParse: Parse never panics, and what it returns is consistent with
// the bytes: a get's key has no NUL, a put splits at the first NUL.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "k\x00v", "k\x00", "\x00v", "k\x00v\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		r, err := Parse(d)
		switch r.Kind {
		case KindDump:
			if len(d) != 0 || err != nil {
				t.Fatalf("dump for %q", d)
			}
		case KindGet:
			if bytes.IndexByte(d, 0) >= 0 || !bytes.Equal(r.Key, d) || len(d) == 0 {
				t.Fatalf("get %q for %q", r.Key, d)
			}
			if (err != nil) != (len(d) > MaxKeySize) {
				t.Fatalf("get of %d bytes: err %v", len(d), err)
			}
		case KindPut:
			if bytes.IndexByte(r.Key, 0) >= 0 || !bytes.Equal(append(append(bytes.Clone(r.Key), 0), r.Value...), d) {
				t.Fatalf("put %q %q for %q", r.Key, r.Value, d)
			}
			ok := len(r.Key) > 0 && len(r.Key) <= MaxKeySize && len(r.Value) <= MaxValueSize
			if ok != (err == nil) {
				t.Fatalf("put %q %q: err %v", r.Key, r.Value, err)
			}
		default:
			t.Fatalf("kind %v", r.Kind)
		}
	})
}

// FuzzEncodeDump: for any dumpable pairs, the datagrams fit, start with
// the count line, never cut a pair, and hold exactly the pairs in order.
func FuzzEncodeDump(f *testing.F) {
	f.Add([]byte("a\x00b\x00c\x00d"), uint16(30000), uint8(5))
	f.Add([]byte(""), uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, seed []byte, size uint16, count uint8) {
		var pairs []Pair
		parts := bytes.Split(seed, []byte{0})
		for i := 0; i < int(count)%40; i++ {
			k := append([]byte(fmt.Sprint(i)), parts[i%len(parts)]...)
			val := bytes.Repeat(parts[(i+1)%len(parts)], 1+int(size)/(1+len(parts[(i+1)%len(parts)])))
			if len(val) > int(size) {
				val = val[:size]
			}
			if Dumpable(k, val) {
				pairs = append(pairs, Pair{k, val})
			}
		}
		dgs := EncodeDump(pairs)
		header := DumpHeader(len(pairs))
		if !bytes.HasPrefix(dgs[0], []byte(header)) {
			t.Fatalf("first datagram %.40q", dgs[0])
		}
		var want []byte
		want = append(want, header...)
		// Boundaries must fall between lines.
		bounds := map[int]bool{len(header): true}
		for _, p := range pairs {
			want = append(want, p.Key...)
			want = append(want, " --> "...)
			want = append(want, p.Value...)
			want = append(want, '\n')
			bounds[len(want)] = true
		}
		pos := 0
		for i, d := range dgs {
			if len(d) > MaxDatagram || (i > 0 && len(d) == 0) {
				t.Fatalf("datagram %d of %d bytes", i, len(d))
			}
			pos += len(d)
			if !bounds[pos] {
				t.Fatalf("datagram %d ends inside a pair", i)
			}
		}
		if !bytes.Equal(bytes.Join(dgs, nil), want) {
			t.Fatal("datagrams do not reassemble to the dump")
		}
	})
}
