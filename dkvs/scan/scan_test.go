package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// fakeRing is servers' records in memory, paged pageSize at a time; a
// server in failAfter fails once that many pages were served.
type fakeRing struct {
	data      map[string]map[string]kv.Record
	pageSize  int
	failAfter map[string]int
	served    map[string]int
}

func (f *fakeRing) page(ctx context.Context, addr string, start []byte) (wire.ScanResponse, error) {
	if n, ok := f.failAfter[addr]; ok && f.served[addr] >= n {
		return wire.ScanResponse{}, fmt.Errorf("%s: connection refused: %w", addr, errcode.Network)
	}
	f.served[addr]++
	var keys []string
	for k := range f.data[addr] {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var resp wire.ScanResponse
	for _, k := range keys {
		if len(resp.Records) == f.pageSize {
			resp.More = true
			break
		}
		resp.Records = append(resp.Records, wire.KeyRecord{Key: []byte(k), Record: f.data[addr][k]})
	}
	return resp, nil
}

func live(wall uint64, v string) kv.Record {
	return kv.Record{Version: kv.Version{Wall: wall, Writer: 1}, Value: []byte(v)}
}

func tomb(wall uint64) kv.Record {
	return kv.Record{Version: kv.Version{Wall: wall, Writer: 1}, Tombstone: true}
}

func TestMerge(t *testing.T) {
	data := map[string]map[string]kv.Record{
		"a": {"k1": live(1, "old"), "k2": live(5, "two"), "k4": tomb(9), "k6": live(1, "six")},
		"b": {"k1": live(2, "new"), "k3": live(1, "three"), "k4": live(3, "resurrected?")},
		"c": {"k1": live(1, "old"), "k5": tomb(1), "k6": live(1, "six")},
	}
	all := "k1=new k2=two k3=three k6=six"
	cases := []struct {
		name      string
		pageSize  int
		start     string
		failAfter map[string]int
		want      string
		failed    string
	}{
		{name: "one page each", pageSize: 100, want: all},
		{name: "pages of one", pageSize: 1, want: all},
		{name: "from k3", pageSize: 2, start: "k3", want: "k3=three k6=six"},
		{name: "from after everything", pageSize: 2, start: "z"},
		{name: "server down at start", pageSize: 1, failAfter: map[string]int{"b": 0}, want: "k1=old k2=two k6=six", failed: "b"},
		{name: "server lost midway", pageSize: 1, failAfter: map[string]int{"a": 2}, want: "k1=new k2=two k3=three k4=resurrected? k6=six", failed: "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRing{data: data, pageSize: tc.pageSize, failAfter: tc.failAfter, served: map[string]int{}}
			var got []string
			var start []byte
			if tc.start != "" {
				start = []byte(tc.start)
			}
			err := Merge(context.Background(), []string{"a", "b", "c"}, start, f.page, func(k, v []byte) error {
				got = append(got, string(k)+"="+string(v))
				return nil
			})
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
			if tc.failed == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var inc *Incomplete
			if !errors.Is(err, errcode.Network) || !errors.As(err, &inc) || len(inc.Failed) != 1 || inc.Failed[0].Addr != tc.failed {
				t.Fatalf("err %v, want an incomplete scan without %s", err, tc.failed)
			}
		})
	}
}

func TestMergeStops(t *testing.T) {
	f := &fakeRing{data: map[string]map[string]kv.Record{"a": {"x": live(1, "1"), "y": live(1, "2")}}, pageSize: 10, served: map[string]int{}}
	stop := errors.New("enough")
	n := 0
	err := Merge(context.Background(), []string{"a"}, nil, f.page, func(k, v []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("%d calls, %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Merge(ctx, []string{"a"}, nil, f.page, func(k, v []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if !bytes.Equal(After([]byte("k")), []byte("k\x00")) {
		t.Fatal("After")
	}
}
