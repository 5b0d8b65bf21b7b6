// Package resp serves the Redis protocol (RESP2, and RESP3 after HELLO 3)
// for dkvs, so that any
// Redis client (redis-cli, redis-benchmark, go-redis, ...) can read and
// write the ring through one dkvs server, which coordinates the quorum
// operations for it.
//
// The server speaks the string subset of Redis that maps onto a replicated
// key-value store: GET, SET, DEL, EXISTS, MGET, MSET, SCAN, KEYS, DBSIZE,
// plus what clients need to connect and look around (PING, ECHO, INFO,
// COMMAND, CLIENT, SELECT, HELLO, CONFIG GET, AUTH, QUIT). Features dkvs
// does not have (expiry, compare-and-set, other databases) are refused
// with an explicit error rather than emulated. Each connection speaks
// RESP2 until HELLO 3 switches it to RESP3, whose replies use the types
// Redis 7 uses for the same commands (nulls, maps, sets, verbatim text).
//
// Commands pipelined on one connection are run concurrently and answered
// in order; the single-key operations of those read together (GET, SET,
// MGET, MSET, EXISTS) run as one batch when the Backend is a Batcher, so
// that they reach each replica server in one request. Commands of one connection that touch the same key still run
// in the order they were sent (a pipelined SET k then GET k sees the new
// value), and a whole-keyspace read (SCAN, KEYS, DBSIZE) waits for the
// writes sent before it.
//
// The package knows nothing of the ring: it runs commands through a
// Backend, which the dkvs server implements with its coordinator.
package resp

import (
	"context"
	"time"
)

// Backend runs operations on the ring for the RESP server. The server
// calls it concurrently from many goroutines; every method must honour
// ctx (the server gives each command a deadline and cancels on Close).
type Backend interface {
	// Get returns the newest value of key. An absent or deleted key is an
	// error matching errors.Is(err, errcode.NotFound).
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Put stores value under key.
	Put(ctx context.Context, key, value []byte) error
	// Delete removes key (deleting an absent key is not an error).
	Delete(ctx context.Context, key []byte) error
	// Scan calls fn for the live pairs of the whole ring in key order,
	// starting at start (inclusive; nil or empty means the first key),
	// until fn returns false, the keys run out or an error occurs. key and
	// value are only valid during the call.
	Scan(ctx context.Context, start []byte, fn func(key, value []byte) bool) error
	// Info describes the ring for INFO and DBSIZE.
	Info(ctx context.Context) (Info, error)
}

// Info is what INFO and DBSIZE report about the ring.
type Info struct {
	// Version is the dkvs version.
	Version string
	// Addr is this server's native address, IP:PORT.
	Addr string
	// Servers lists the ring's servers (IP:PORT) in servers.txt order.
	Servers []string
	// N, W and R are the replication factor and the write and read
	// quorums the server uses for RESP commands.
	N, W, R int
	// Keys is the number of live keys in the ring, as DBSIZE reports it;
	// an estimate (e.g. from the servers' counters) is acceptable.
	Keys int64
	// Started is when the dkvs server started; zero means "when the RESP
	// server was created".
	Started time.Time
}

// OpKind is what one operation of a batch does.
type OpKind uint8

// Kinds of batch operations.
const (
	OpGet    OpKind = iota + 1 // read Key into Value
	OpPut                      // store Value under Key
	OpDelete                   // delete Key
)

// Op is one operation of a batch and, once the batch ran, its outcome:
// Value is what OpGet read, Err the operation's own error (for OpGet, one
// matching errcode.NotFound for an absent key).
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
	Err   error
}

// Batcher is a Backend that runs many operations at once: Batch fills in
// each op's outcome, one failing not failing the others. The server uses
// it for multi-key commands and pipelines: with it, the operations of
// MGET, MSET, DEL and EXISTS and of the commands pipelined together
// travel to each replica server as one request. Without it, the server
// calls Get, Put and Delete side by side.
type Batcher interface {
	Backend
	Batch(ctx context.Context, ops []Op)
}
