package lin

import (
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestCheck runs the checker, key by key, on small histories with a known
// answer.
func TestCheck(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	put := func(c int, key, v string, call, ret int, out Outcome) Op {
		return Op{Client: c, In: Input{Kind: 'p', Key: key, Value: v}, Outcome: out, Call: ms(call), Ret: ms(ret)}
	}
	get := func(c int, key, v string, call, ret int) Op {
		return Op{Client: c, In: Input{Kind: 'g', Key: key}, Out: Output{Found: v != "", Value: v}, Call: ms(call), Ret: ms(ret)}
	}
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"two keys in order", []Op{
			put(0, "a", "1", 0, 1, OK), get(1, "a", "1", 2, 3),
			put(0, "b", "x", 0, 1, OK), get(1, "b", "x", 2, 3),
		}, porcupine.Ok},
		{"concurrent writes, either order", []Op{
			put(0, "a", "1", 0, 10, OK), put(1, "a", "2", 0, 10, OK), get(2, "a", "1", 11, 12), get(2, "a", "1", 13, 14),
		}, porcupine.Ok},
		{"a failed write has no effect", []Op{
			put(0, "a", "1", 0, 1, OK), put(1, "a", "2", 2, 3, Failed), get(2, "a", "1", 4, 5),
		}, porcupine.Ok},
		{"a write of unknown outcome may land late", []Op{
			put(0, "a", "1", 0, 1, Unknown), get(1, "a", "", 2, 3), get(1, "a", "1", 4, 5),
		}, porcupine.Ok},
		{"stale read on one key of two", []Op{
			put(0, "a", "1", 0, 1, OK), put(0, "a", "2", 2, 3, OK), get(1, "a", "1", 4, 5),
			put(0, "b", "x", 0, 1, OK), get(1, "b", "x", 2, 3),
		}, porcupine.Illegal},
		{"a value never written", []Op{get(0, "a", "ghost", 0, 1)}, porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, file, err := Check(c.ops, "check-test", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if res != c.want {
				t.Fatalf("got %s, want %s", res, c.want)
			}
			if res == porcupine.Ok {
				if file != "" {
					t.Fatalf("a visualisation for an Ok history: %s", file)
				}
				return
			}
			if _, err := os.Stat(file); err != nil {
				t.Fatalf("no visualisation: %v", err)
			}
			os.Remove(file)
		})
	}
}
