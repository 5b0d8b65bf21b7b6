package errcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitStatus(t *testing.T) {
	cases := []struct {
		c    Code
		exit int
		msg  string
	}{
		{None, 0, ""},
		{IO, 129, "I/O Error"},
		{Runtime, 130, "Runtime error"},
		{OutOfMemory, 131, "(re|m|c)alloc failed"},
		{Network, 132, "Network error"},
		{InvalidConfig, 133, "Invalid config"},
		{InvalidCommand, 134, "Invalid command"},
		{InvalidArg, 135, "Invalid argument (internal error)"},
		{Address, 136, "Invalid address"},
		{NotFound, 137, "Not found"},
		{Threading, 138, "Threading error"},
	}
	if len(cases) != len(All) {
		t.Fatalf("table has %d codes, All has %d", len(cases), len(All))
	}
	for _, tc := range cases {
		if got := tc.c.ExitStatus(); got != tc.exit {
			t.Errorf("%s: exit %d, want %d", tc.c.Name(), got, tc.exit)
		}
		if got := tc.c.Error(); got != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.c.Name(), got, tc.msg)
		}
	}
}

func TestOf(t *testing.T) {
	wrapped := fmt.Errorf("get %q: %w", "k", NotFound)
	if Of(wrapped) != NotFound || !errors.Is(wrapped, NotFound) {
		t.Fatalf("wrapped NotFound not recognised: %v", Of(wrapped))
	}
	if Of(nil) != None {
		t.Fatal("nil is not None")
	}
	if Of(errors.New("x")) != Runtime {
		t.Fatal("plain error is not Runtime")
	}
	e := Errorf(Address, "bad ip %q", "1.2.3")
	if Of(e) != Address || e.Error() != `bad ip "1.2.3": Invalid address` {
		t.Fatalf("Errorf: %v (%v)", e, Of(e))
	}
}
