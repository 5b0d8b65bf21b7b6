// Command cgo is the Go side of libdkvs.so, the C library of dkvs, built
// with
//
//	go build -buildmode=c-shared -o done/libdkvs.so ./cgo
//
// The public C functions, those of include/dkvs.h, are written in C in
// dkvs.c: they turn C strings into pointer and length and call the Go
// functions exported here (dkvsgo_*, internal to the library), which wrap
// the Go client (package dkvs) and nothing else, so the library holds no
// storage engine. Doing the public layer in C lets the compiler check every
// definition against the hand-written header.
//
// Every export recovers from panics (DKVS_ERR_RUNTIME), copies C input
// into Go memory before use and hands out only malloc'ed C memory, so no Go
// pointer ever reaches C.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -Wall -Wextra
#include <stdint.h>
#include <stdlib.h>

// dkvsgo_alloc is malloc, defined in dkvs.c: unlike C.malloc it returns
// NULL when memory runs out, which becomes DKVS_ERR_OUT_OF_MEMORY.
void *dkvsgo_alloc(size_t n);
*/
import "C"

import (
	"context"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/quorum"
)

// unknownOutcome is DKVS_ERR_UNKNOWN_OUTCOME of dkvs.h: a write that may
// have been applied although it failed. It is not in the DKVS table, so
// errcode has no name for it.
const unknownOutcome errcode.Code = -100

// codeOf returns the C error code of err.
func codeOf(err error) errcode.Code {
	if errors.Is(err, dkvs.ErrUnknownOutcome) {
		return unknownOutcome
	}
	return errcode.Of(err)
}

// request builds the request of an explicit n and r or w: both at least
// 1, as the plain C functions document.
func request(e *entry, n, q C.int, read bool) (dkvs.Request, bool) {
	k := quorum.Write
	if read {
		k = quorum.Read
	}
	r, err := quorum.Explicit(k, int(n), int(q))
	if err != nil {
		return dkvs.Request{}, false
	}
	r.Linearizable = e.lin.Load()
	return r, true
}

// maxRequestN bounds the n of a dkvs_request_t, as it always has: far
// above any ring, it only keeps garbage from a C caller's uninitialised
// struct from passing for a request.
const maxRequestN = 1 << 16

// requestOf checks a dkvs_request_t and turns it into a request.
func requestOf(e *entry, n, r, w, level, lin C.int) (dkvs.Request, bool) {
	req := dkvs.Request{N: int(n), R: int(r), W: int(w), Level: dkvs.Level(level),
		Linearizable: lin != 0 || e.lin.Load()}
	if req.Valid() != nil || n > maxRequestN {
		return dkvs.Request{}, false
	}
	return req, true
}

// handles holds every open handle of the process: the global state that
// C's integer handles require (see table).
var handles = newTable()

// main is required by -buildmode=c-shared and never runs.
func main() {}

// run calls fn and returns its code, or errcode.Runtime if fn panics:
// every export runs its body through it, so that no panic crosses into C.
func run(fn func() errcode.Code) (code errcode.Code) {
	defer func() {
		if r := recover(); r != nil {
			code = errcode.Runtime
		}
	}()
	return fn()
}

// goBytes copies n bytes at p into Go memory. A NULL p is refused unless
// nullOK and n is 0 (an empty value).
func goBytes(p unsafe.Pointer, n C.size_t, nullOK bool) ([]byte, bool) {
	if p == nil {
		return []byte{}, nullOK && n == 0
	}
	if uint64(n) > math.MaxInt32 { // C.GoBytes takes an int; far above every limit anyway
		return nil, false
	}
	return C.GoBytes(p, C.int(n)), true
}

// keyed runs op on the handle h for the key at key/klen, with the request
// that req builds for the handle: the checks every keyed export makes, in
// one place. A NULL key, a handle not open or a bad request is
// DKVS_ERR_INVALID_ARGUMENT.
func keyed(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, req func(*entry) (dkvs.Request, bool),
	op func(e *entry, k []byte, r dkvs.Request) errcode.Code) errcode.Code {
	k, ok := goBytes(key, klen, false)
	if !ok {
		return errcode.InvalidArg
	}
	e, ok := handles.acquire(uintptr(h))
	if !ok {
		return errcode.InvalidArg
	}
	defer e.release()
	r, ok := req(e)
	if !ok {
		return errcode.InvalidArg
	}
	return op(e, k, r)
}

// explicit returns a req for keyed of an explicit n and r or w.
func explicit(n, q C.int, read bool) func(*entry) (dkvs.Request, bool) {
	return func(e *entry) (dkvs.Request, bool) { return request(e, n, q, read) }
}

// fromStruct returns a req for keyed of a dkvs_request_t's fields.
func fromStruct(n, r, w, level, lin C.int) func(*entry) (dkvs.Request, bool) {
	return func(e *entry) (dkvs.Request, bool) { return requestOf(e, n, r, w, level, lin) }
}

// putOp returns the op for keyed of a put of the value at value/vlen
// (NULL only when vlen is 0), or false if the value is refused.
func putOp(value unsafe.Pointer, vlen C.size_t) (func(*entry, []byte, dkvs.Request) errcode.Code, bool) {
	v, ok := goBytes(value, vlen, true)
	if !ok {
		return nil, false
	}
	return func(e *entry, k []byte, r dkvs.Request) errcode.Code {
		return codeOf(e.c.PutWith(context.Background(), k, v, r))
	}, true
}

// delOp is the op for keyed of a delete.
func delOp(e *entry, k []byte, r dkvs.Request) errcode.Code {
	return codeOf(e.c.DeleteWith(context.Background(), k, r))
}

// getOp returns the op for keyed of a get that hands its value out
// through value and vlen, which it clears first; false if either is NULL.
func getOp(value *unsafe.Pointer, vlen *C.size_t) (func(*entry, []byte, dkvs.Request) errcode.Code, bool) {
	if value != nil {
		*value = nil
	}
	if vlen != nil {
		*vlen = 0
	}
	if value == nil || vlen == nil {
		return nil, false
	}
	return func(e *entry, k []byte, r dkvs.Request) errcode.Code { return get(e, k, r, value, vlen) }, true
}

// dkvsgo_open backs dkvs_open, dkvs_open_timeout and dkvs_open_opts: it
// reads the servers file at path (NULL or "" for servers.txt) and the TLS
// files named (NULL or "": none), takes the user and token that
// authenticate each connection (NULL or "": none), and stores a new
// handle in *out.
//
//export dkvsgo_open
func dkvsgo_open(path *C.char, timeoutNS C.int64_t, tlsCA, tlsCert, tlsKey, user, token *C.char, out *C.uintptr_t) C.int {
	return C.int(run(func() errcode.Code {
		if out == nil {
			return errcode.InvalidArg
		}
		*out = 0
		if timeoutNS < 0 {
			return errcode.InvalidArg
		}
		name := ""
		if path != nil {
			name = C.GoString(path)
		}
		opts := &dkvs.Options{Timeout: time.Duration(timeoutNS)}
		ca, cert, key := goString(tlsCA), goString(tlsCert), goString(tlsKey)
		if ca != "" || cert != "" || key != "" {
			cfg, err := dkvs.TLSConfig(ca, cert, key)
			if err != nil {
				return errcode.Of(err)
			}
			opts.TLS = cfg
		}
		opts.User, opts.Token = goString(user), goString(token)
		if opts.User == "" && opts.Token != "" || opts.User != "" && opts.Token == "" {
			return errcode.InvalidConfig // a user needs its token, a token its user
		}
		c, err := dkvs.Open(name, opts)
		if err != nil {
			return errcode.Of(err)
		}
		*out = C.uintptr_t(handles.add(c))
		return errcode.None
	}))
}

// goString is C.GoString with NULL as "".
func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// dkvsgo_close backs dkvs_close: it takes handle h out of the table, waits
// for the calls running on it, then closes the client (which waits for
// replica writes under way).
//
//export dkvsgo_close
func dkvsgo_close(h C.uintptr_t) C.int {
	return C.int(run(func() errcode.Code {
		e, ok := handles.remove(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		return errcode.Of(e.c.Close())
	}))
}

// dkvsgo_put backs dkvs_put and dkvs_put_bin.
//
//export dkvsgo_put
func dkvsgo_put(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, value unsafe.Pointer, vlen C.size_t, n, w C.int) C.int {
	return C.int(run(func() errcode.Code {
		op, ok := putOp(value, vlen)
		if !ok {
			return errcode.InvalidArg
		}
		return keyed(h, key, klen, explicit(n, w, false), op)
	}))
}

// dkvsgo_get backs dkvs_get and dkvs_get_bin: on success *value is a
// malloc'ed copy of the value plus a NUL byte, and *vlen its length.
//
//export dkvsgo_get
func dkvsgo_get(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, r C.int, value *unsafe.Pointer, vlen *C.size_t) C.int {
	return C.int(run(func() errcode.Code {
		op, ok := getOp(value, vlen)
		if !ok {
			return errcode.InvalidArg
		}
		return keyed(h, key, klen, explicit(n, r, true), op)
	}))
}

// get runs a read and hands its value to C: on success *value is a
// malloc'ed copy of the value plus a NUL byte, and *vlen its length.
func get(e *entry, k []byte, req dkvs.Request, value *unsafe.Pointer, vlen *C.size_t) errcode.Code {
	v, err := e.c.GetWith(context.Background(), k, req)
	if err != nil {
		return codeOf(err)
	}
	// One extra NUL byte, so that the value reads as a C string.
	p := C.dkvsgo_alloc(C.size_t(len(v)) + 1)
	if p == nil {
		return errcode.OutOfMemory
	}
	buf := unsafe.Slice((*byte)(p), len(v)+1)
	buf[copy(buf, v)] = 0
	*value, *vlen = p, C.size_t(len(v))
	return errcode.None
}

// dkvsgo_del backs dkvs_del and dkvs_del_bin.
//
//export dkvsgo_del
func dkvsgo_del(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, w C.int) C.int {
	return C.int(run(func() errcode.Code {
		return keyed(h, key, klen, explicit(n, w, false), delOp)
	}))
}

// dkvsgo_put_req backs dkvs_put_req.
//
//export dkvsgo_put_req
func dkvsgo_put_req(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, value unsafe.Pointer, vlen C.size_t, n, r, w, level, lin C.int) C.int {
	return C.int(run(func() errcode.Code {
		op, ok := putOp(value, vlen)
		if !ok {
			return errcode.InvalidArg
		}
		return keyed(h, key, klen, fromStruct(n, r, w, level, lin), op)
	}))
}

// dkvsgo_get_req backs dkvs_get_req.
//
//export dkvsgo_get_req
func dkvsgo_get_req(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, r, w, level, lin C.int, value *unsafe.Pointer, vlen *C.size_t) C.int {
	return C.int(run(func() errcode.Code {
		op, ok := getOp(value, vlen)
		if !ok {
			return errcode.InvalidArg
		}
		return keyed(h, key, klen, fromStruct(n, r, w, level, lin), op)
	}))
}

// dkvsgo_del_req backs dkvs_del_req.
//
//export dkvsgo_del_req
func dkvsgo_del_req(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, r, w, level, lin C.int) C.int {
	return C.int(run(func() errcode.Code {
		return keyed(h, key, klen, fromStruct(n, r, w, level, lin), delOp)
	}))
}

// dkvsgo_resolve_args backs dkvs_resolve_args: it applies the command
// line's rules (quorum.Args) to -n, -r, -w and -c as written (NULL: not
// given) and --linearizable, and stores N, R, W and the linearizable mode
// in the out-pointers, or, on an error, its message without the code's in
// msg (at most msgSize bytes with the NUL; nothing when msg is NULL).
//
//export dkvsgo_resolve_args
func dkvsgo_resolve_args(n, r, w, c *C.char, lin C.int, outN, outR, outW, outLin *C.int, msg *C.char, msgSize C.size_t) C.int {
	return C.int(run(func() errcode.Code {
		setMessage(msg, msgSize, "")
		if outN == nil || outR == nil || outW == nil || outLin == nil {
			setMessage(msg, msgSize, "no request to store the result in")
			return errcode.InvalidArg
		}
		given := func(p *C.char) *string {
			if p == nil {
				return nil
			}
			s := C.GoString(p)
			return &s
		}
		req, err := quorum.Args{N: given(n), R: given(r), W: given(w), C: given(c), Linearizable: lin != 0}.Resolve()
		if err != nil {
			setMessage(msg, msgSize, errcode.Detail(err))
			return errcode.Of(err)
		}
		*outN, *outR, *outW = C.int(req.N), C.int(req.R), C.int(req.W)
		*outLin = 0
		if req.Linearizable {
			*outLin = 1
		}
		return errcode.None
	}))
}

// setMessage copies s into the C buffer msg of size bytes, cut to fit and
// always NUL-terminated; a NULL msg or a size of 0 takes nothing.
func setMessage(msg *C.char, size C.size_t, s string) {
	if msg == nil || size == 0 {
		return
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(msg)), int(min(uint64(size), math.MaxInt32)))
	buf[copy(buf[:len(buf)-1], s)] = 0
}

// dkvsgo_set_linearizable backs dkvs_set_linearizable.
//
//export dkvsgo_set_linearizable
func dkvsgo_set_linearizable(h C.uintptr_t, on C.int) C.int {
	return C.int(run(func() errcode.Code {
		e, ok := handles.acquire(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		defer e.release()
		e.lin.Store(on != 0)
		return errcode.None
	}))
}
