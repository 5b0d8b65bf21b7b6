package bench

import (
	"math/rand/v2"
	"strconv"
)

// OpType is the kind of an operation.
type OpType int

// Operation kinds, in report order.
const (
	Get OpType = iota
	Put
	Delete
	numOpTypes
)

// String returns "get", "put" or "delete".
func (o OpType) String() string {
	switch o {
	case Get:
		return "get"
	case Put:
		return "put"
	case Delete:
		return "delete"
	}
	return "op" + strconv.Itoa(int(o))
}

// Generator produces one worker's operations: for each, a kind and a key
// index. It is not safe for concurrent use; each worker has its own.
type Generator struct {
	rnd                 *rand.Rand
	zipf                *rand.Zipf
	keys                int
	dist                Distribution
	writeCut, deleteCut float64 // thresholds of a uniform draw in [0, 1)
}

// NewGenerator returns the generator of worker number worker. Generators
// of the same seed and worker produce the same sequence.
func NewGenerator(c Config, worker int) *Generator {
	// Two words of seed: the run's seed and the worker, mixed so that
	// nearby workers do not get correlated streams.
	rnd := rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15*uint64(worker+1)))
	g := &Generator{
		rnd:       rnd,
		keys:      c.Keys,
		dist:      c.Distribution,
		writeCut:  c.WriteFraction,
		deleteCut: c.WriteFraction + c.DeleteFraction,
	}
	if c.Distribution == Zipf && c.Keys > 1 {
		s := c.ZipfS
		if !(s > 1) {
			s = DefaultZipfS
		}
		g.zipf = rand.NewZipf(rnd, s, 1, uint64(c.Keys-1))
	}
	return g
}

// Op returns the kind of the next operation.
func (g *Generator) Op() OpType {
	u := g.rnd.Float64()
	switch {
	case u < g.writeCut:
		return Put
	case u < g.deleteCut:
		return Delete
	}
	return Get
}

// Key returns the index of the next operation's key, in [0, keys).
func (g *Generator) Key() int {
	switch g.dist {
	case Hotspot:
		if g.keys <= HotKeys {
			return g.rnd.IntN(g.keys)
		}
		if g.rnd.Float64() < HotFraction {
			return g.rnd.IntN(HotKeys)
		}
		return HotKeys + g.rnd.IntN(g.keys-HotKeys)
	case Zipf:
		if g.zipf == nil {
			return 0 // a single key
		}
		return int(g.zipf.Uint64())
	}
	return g.rnd.IntN(g.keys)
}

// Keys formats key indexes as KeyPrefix followed by the index,
// zero-padded to the width of the largest index so that keys sort in
// index order.
type Keys struct {
	prefix string
	width  int
}

// NewKeys returns the key formatter of a workload.
func NewKeys(c Config) Keys {
	return Keys{prefix: c.KeyPrefix, width: len(strconv.Itoa(max(c.Keys-1, 0)))}
}

// Key returns key number i in a new slice: the client may keep a key
// after an operation returns (replica writes and read repair continue in
// the background), so a key buffer is never reused.
func (k Keys) Key(i int) []byte {
	b := make([]byte, 0, len(k.prefix)+k.width+1)
	b = append(b, k.prefix...)
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(i), 10)
	for n := len(d); n < k.width; n++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// Value returns the value every put writes: size random bytes drawn from
// the seed. Random bytes do not compress, so the servers store and move
// every byte.
func Value(c Config) []byte {
	rnd := rand.New(rand.NewPCG(c.Seed, 0x76616c7565)) // "value"
	v := make([]byte, c.ValueSize)
	for i := 0; i < len(v); i += 8 {
		x := rnd.Uint64()
		for j := 0; j < 8 && i+j < len(v); j++ {
			v[i+j] = byte(x >> (8 * j))
		}
	}
	return v
}
