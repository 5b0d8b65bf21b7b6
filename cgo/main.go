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
	"math"
	"time"
	"unsafe"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

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

// dkvsgo_open backs dkvs_open and dkvs_open_timeout: it reads the servers
// file at path (NULL or "" for servers.txt) and stores a new handle in *out.
//
//export dkvsgo_open
func dkvsgo_open(path *C.char, timeoutNS C.int64_t, out *C.uintptr_t) C.int {
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
		c, err := dkvs.Open(name, &dkvs.Options{Timeout: time.Duration(timeoutNS)})
		if err != nil {
			return errcode.Of(err)
		}
		*out = C.uintptr_t(handles.add(c))
		return errcode.None
	}))
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
		k, ok := goBytes(key, klen, false)
		if !ok {
			return errcode.InvalidArg
		}
		v, ok := goBytes(value, vlen, true)
		if !ok {
			return errcode.InvalidArg
		}
		e, ok := handles.acquire(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		defer e.release()
		return errcode.Of(e.c.Put(context.Background(), k, v, int(n), int(w)))
	}))
}

// dkvsgo_get backs dkvs_get and dkvs_get_bin: on success *value is a
// malloc'ed copy of the value plus a NUL byte, and *vlen its length.
//
//export dkvsgo_get
func dkvsgo_get(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, r C.int, value *unsafe.Pointer, vlen *C.size_t) C.int {
	return C.int(run(func() errcode.Code {
		if value != nil {
			*value = nil
		}
		if vlen != nil {
			*vlen = 0
		}
		if value == nil || vlen == nil {
			return errcode.InvalidArg
		}
		k, ok := goBytes(key, klen, false)
		if !ok {
			return errcode.InvalidArg
		}
		e, ok := handles.acquire(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		defer e.release()
		v, err := e.c.Get(context.Background(), k, int(n), int(r))
		if err != nil {
			return errcode.Of(err)
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
	}))
}

// dkvsgo_del backs dkvs_del and dkvs_del_bin.
//
//export dkvsgo_del
func dkvsgo_del(h C.uintptr_t, key unsafe.Pointer, klen C.size_t, n, w C.int) C.int {
	return C.int(run(func() errcode.Code {
		k, ok := goBytes(key, klen, false)
		if !ok {
			return errcode.InvalidArg
		}
		e, ok := handles.acquire(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		defer e.release()
		return errcode.Of(e.c.Delete(context.Background(), k, int(n), int(w)))
	}))
}
