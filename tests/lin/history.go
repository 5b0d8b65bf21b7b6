package lin

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// Outcome of a recorded operation.
type Outcome int

// Outcomes.
const (
	OK      Outcome = iota // completed: its output is known
	Failed                 // failed cleanly: it had no effect
	Unknown                // a write that may or may not have taken effect
)

// Input is an operation as called.
type Input struct {
	Kind  byte // 'g' get, 'p' put, 'd' delete
	Key   string
	Value string // put
}

// Output is what a completed operation returned.
type Output struct {
	Found bool
	Value string
}

// Op is one recorded operation.
type Op struct {
	Client    int
	In        Input
	Out       Output
	Outcome   Outcome
	Call, Ret time.Duration // since the start of the run
	Version   kv.Version    // of a completed or unknown write
	Err       string
}

// Recorder collects operations from many clients.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []Op
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Start returns when the history began.
func (r *Recorder) Start() time.Time { return r.start }

func (r *Recorder) now() time.Duration { return time.Since(r.start) }

func (r *Recorder) add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns the history.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Workload drives one client.
type Workload struct {
	Keys int
	Req  dkvs.Request
	// WriteBacks counts the linearizable reads of all clients that wrote
	// the newest version back to a majority.
	WriteBacks *atomic.Int64
}

// Run performs random operations with c as client number id until ctx
// ends: half gets, 40% puts of unique values, 10% deletes.
func (w Workload) Run(ctx context.Context, id int, c *dkvs.Client, rec *Recorder, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	co := c.Coordinator()
	for seq := 0; ctx.Err() == nil; seq++ {
		in := Input{Key: fmt.Sprintf("k%d", rng.Intn(w.Keys))}
		switch x := rng.Intn(10); {
		case x < 5:
			in.Kind = 'g'
		case x < 9:
			in.Kind = 'p'
			in.Value = fmt.Sprintf("c%d-%d", id, seq)
		default:
			in.Kind = 'd'
		}
		op := Op{Client: id, In: in, Call: rec.now()}
		var err error
		switch in.Kind {
		case 'g':
			var r kv.Record
			r, err = co.GetReq(context.Background(), []byte(in.Key), w.Req)
			if err == nil {
				op.Out = Output{Found: true, Value: string(r.Value)}
			} else if errors.Is(err, dkvs.ErrNotFound) {
				err = nil
			}
		case 'p':
			op.Version, err = co.PutReq(context.Background(), []byte(in.Key), []byte(in.Value), w.Req)
		case 'd':
			op.Version, err = co.DeleteReq(context.Background(), []byte(in.Key), w.Req)
		}
		op.Ret = rec.now()
		switch {
		case err == nil:
			op.Outcome = OK
		case in.Kind != 'g' && errors.Is(err, dkvs.ErrUnknownOutcome):
			op.Outcome = Unknown
			op.Err = err.Error()
		default:
			op.Outcome = Failed
			op.Err = err.Error()
		}
		rec.add(op)
	}
	if w.WriteBacks != nil {
		w.WriteBacks.Add(co.WriteBacks())
	}
}

// state is a register: a value, or absent.
type state struct {
	Value string
	Found bool
}

// Model is the per-key register model, partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return state{} },
	Step: func(st, in, out interface{}) (bool, interface{}) {
		s, i := st.(state), in.(Input)
		switch i.Kind {
		case 'p':
			return true, state{Value: i.Value, Found: true}
		case 'd':
			return true, state{}
		}
		o := out.(Output)
		return o.Found == s.Found && (!s.Found || o.Value == s.Value), s
	},
	DescribeOperation: func(in, out interface{}) string {
		i := in.(Input)
		switch i.Kind {
		case 'p':
			return fmt.Sprintf("put(%s, %s)", i.Key, i.Value)
		case 'd':
			return fmt.Sprintf("del(%s)", i.Key)
		}
		o := out.(Output)
		if !o.Found {
			return fmt.Sprintf("get(%s) -> not found", i.Key)
		}
		return fmt.Sprintf("get(%s) -> %s", i.Key, o.Value)
	},
	DescribeState: func(st interface{}) string {
		s := st.(state)
		if !s.Found {
			return "absent"
		}
		return s.Value
	},
}

// Porcupine turns the history into porcupine's operations: failed
// operations had no effect and are left out; a write of unknown outcome
// may take effect at any time after its call, so it returns after
// everything else.
func Porcupine(ops []Op) []porcupine.Operation {
	var end time.Duration
	for _, op := range ops {
		end = max(end, op.Ret)
	}
	var out []porcupine.Operation
	for _, op := range ops {
		ret := op.Ret
		switch op.Outcome {
		case Failed:
			continue
		case Unknown:
			ret = end + time.Second
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client, Input: op.In, Output: op.Out,
			Call: int64(op.Call), Return: int64(ret),
		})
	}
	return out
}

// verboseLimit is the most operations Check hands to porcupine's verbose
// mode for a visualisation: the partial linearizations it keeps grow far
// faster than the history.
const verboseLimit = 20_000

// Check runs porcupine, one key at a time: porcupine checks the partitions
// of a history in parallel, and its memory per partition grows with the
// square of the partition's length, roughly (a cache of bitsets over its
// operations), so ten keys of 160,000 operations each, checked at once,
// ran a 24 GiB machine out of memory in a 10-minute soak. On anything but
// Ok it writes the visualisation of the failing keys' history to a file
// under tests/out and returns its path, or "" when that history is longer
// than verboseLimit.
func Check(ops []Op, name string, timeout time.Duration) (porcupine.CheckResult, string, error) {
	deadline := time.Now().Add(timeout)
	res := porcupine.Ok
	var bad []porcupine.Operation
	for _, part := range Model.Partition(Porcupine(ops)) {
		left := time.Until(deadline)
		if left <= 0 {
			return porcupine.Unknown, "", nil
		}
		switch r := porcupine.CheckOperationsTimeout(Model, part, left); r {
		case porcupine.Ok:
		case porcupine.Illegal:
			res = porcupine.Illegal
			bad = append(bad, part...)
		default:
			if res == porcupine.Ok {
				res = r
			}
			bad = append(bad, part...)
		}
	}
	if res == porcupine.Ok || len(bad) > verboseLimit {
		return res, "", nil
	}
	_, info := porcupine.CheckOperationsVerbose(Model, bad, time.Until(deadline)+time.Minute)
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.html", name, time.Now().Format("20060102-150405")))
	if err := porcupine.VisualizePath(Model, info, path); err != nil {
		return res, "", err
	}
	abs, _ := filepath.Abs(path)
	return res, abs, nil
}

// Summary counts a history's operations by kind and outcome.
func Summary(ops []Op) string {
	var n [3][3]int // kind (g,p,d) x outcome
	idx := map[byte]int{'g': 0, 'p': 1, 'd': 2}
	for _, op := range ops {
		n[idx[op.In.Kind]][op.Outcome]++
	}
	return fmt.Sprintf("%d operations: gets %d ok / %d failed; puts %d ok / %d failed / %d unknown; deletes %d ok / %d failed / %d unknown",
		len(ops), n[0][OK], n[0][Failed], n[1][OK], n[1][Failed], n[1][Unknown], n[2][OK], n[2][Failed], n[2][Unknown])
}
