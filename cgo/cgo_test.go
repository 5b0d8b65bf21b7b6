package main

import (
	"context"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// fakeClient records whether Close ran while a call was still counted.
type fakeClient struct {
	callDone   atomic.Bool
	closedLate atomic.Bool
	closes     atomic.Int32
}

func (f *fakeClient) PutWith(context.Context, []byte, []byte, dkvs.Request) error { return nil }
func (f *fakeClient) GetWith(context.Context, []byte, dkvs.Request) ([]byte, error) {
	return nil, errcode.NotFound
}
func (f *fakeClient) DeleteWith(context.Context, []byte, dkvs.Request) error { return nil }
func (f *fakeClient) GetMany(context.Context, [][]byte, dkvs.Request) []dkvs.Result {
	return nil
}
func (f *fakeClient) PutMany(context.Context, []dkvs.Pair, dkvs.Request) []error { return nil }
func (f *fakeClient) DeleteMany(context.Context, [][]byte, dkvs.Request) []error {
	return nil
}
func (f *fakeClient) Close() error {
	f.closes.Add(1)
	f.closedLate.Store(f.callDone.Load())
	return nil
}

func TestTableHandles(t *testing.T) {
	tb := newTable()
	a, b := tb.add(&fakeClient{}), tb.add(&fakeClient{})
	if a == 0 || b == 0 || a == b {
		t.Fatalf("handles %d and %d", a, b)
	}
	for _, h := range []uintptr{0, b + 1, 0x1234} {
		if _, ok := tb.acquire(h); ok {
			t.Errorf("acquire(%#x) of a handle never issued succeeded", h)
		}
	}
	e, ok := tb.acquire(a)
	if !ok {
		t.Fatal("acquire of an open handle failed")
	}
	e.release()
	if _, ok := tb.remove(a); !ok {
		t.Fatal("first remove failed")
	}
	if _, ok := tb.remove(a); ok {
		t.Fatal("second remove (double close) succeeded")
	}
	if _, ok := tb.acquire(a); ok {
		t.Fatal("acquire after remove succeeded")
	}
	if _, ok := tb.acquire(b); !ok {
		t.Fatal("the other handle was lost")
	}
	if c := tb.add(&fakeClient{}); c == a || c == b {
		t.Fatalf("handle %d reused", c)
	}
}

// TestTableRemoveWaitsForCalls checks that close waits for a call under
// way on another thread before the client is closed.
func TestTableRemoveWaitsForCalls(t *testing.T) {
	tb := newTable()
	f := &fakeClient{}
	h := tb.add(f)
	e, _ := tb.acquire(h)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if e, ok := tb.remove(h); ok {
			e.c.Close()
		}
	}()
	// New calls fail once remove has taken the handle out.
	for {
		e2, ok := tb.acquire(h)
		if !ok {
			break
		}
		e2.release()
	}
	f.callDone.Store(true)
	e.release()
	<-closed
	if f.closes.Load() != 1 || !f.closedLate.Load() {
		t.Fatalf("Close ran %d times, after the call ended: %v", f.closes.Load(), f.closedLate.Load())
	}
}

func TestRunRecovers(t *testing.T) {
	cases := []struct {
		name string
		fn   func() errcode.Code
		want errcode.Code
	}{
		{"panic", func() errcode.Code { panic("boom") }, errcode.Runtime},
		//lint:ignore SA5000 the write to a nil map is the runtime panic under test
		{"nil map write", func() errcode.Code { var m map[string]int; m["x"] = 1; return errcode.None }, errcode.Runtime},
		{"runtime error", func() errcode.Code { var p *fakeClient; return errcode.Code(p.closes.Load()) }, errcode.Runtime},
		{"code", func() errcode.Code { return errcode.NotFound }, errcode.NotFound},
		{"success", func() errcode.Code { return errcode.None }, errcode.None},
	}
	for _, tc := range cases {
		if got := run(tc.fn); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGoBytes(t *testing.T) {
	if b, ok := goBytes(nil, 0, true); !ok || len(b) != 0 {
		t.Errorf("NULL empty value: %v %v", b, ok)
	}
	if _, ok := goBytes(nil, 0, false); ok {
		t.Error("NULL key accepted")
	}
	if _, ok := goBytes(nil, 3, true); ok {
		t.Error("NULL value of 3 bytes accepted")
	}
	src := []byte("a\x00b")
	b, ok := goBytes(unsafe.Pointer(&src[0]), 3, false)
	if !ok || string(b) != "a\x00b" {
		t.Errorf("copy: %q %v", b, ok)
	}
	src[0] = 'z'
	if b[0] != 'a' {
		t.Error("goBytes did not copy")
	}
}
