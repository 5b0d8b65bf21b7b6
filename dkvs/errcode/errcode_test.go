package errcode

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// claims carries a code through an As method, as coord.QuorumError does.
type claims struct{ c Code }

func (e claims) Error() string { return "claims " + e.c.Name() }
func (e claims) As(target any) bool {
	if p, ok := target.(*Code); ok {
		*p = e.c
		return true
	}
	return false
}

// TestOfOuterCodeWins: an error that wraps its cause and its own code
// carries the cause's code too, deeper; Of returns its own, where
// errors.As would return the cause's.
func TestOfOuterCodeWins(t *testing.T) {
	notFound := fmt.Errorf("get %q: %w", "k", NotFound)
	cases := []struct {
		name string
		err  error
		want Code
	}{
		{"cause with a code", fmt.Errorf("bad reply: %w: %w", notFound, Network), Network},
		{"bare code as cause", fmt.Errorf("x: %w: %w", NotFound, IO), IO},
		{"wrapped again", fmt.Errorf("outer: %w", fmt.Errorf("storage: %w: %w", notFound, IO)), IO},
		{"three wrapped", fmt.Errorf("%w: %w: %w", notFound, context.Canceled, Network), Network},
		{"code by As", fmt.Errorf("op: %w", claims{Address}), Address},
		{"As beats a deeper code", fmt.Errorf("x: %w: %w", notFound, claims{Threading}), Threading},
		{"joined: equally near, the last wins", errors.Join(notFound, fmt.Errorf("y: %w", IO)), IO},
		{"cause without a code", fmt.Errorf("get: %w: %w", context.DeadlineExceeded, Network), Network},
		{"no code at all", fmt.Errorf("x: %w: %w", io.EOF, context.Canceled), Runtime},
		{"nil in a join", errors.Join(nil, fmt.Errorf("z: %w", InvalidArg)), InvalidArg},
	}
	for _, tc := range cases {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: Of(%q) = %s, want %s", tc.name, tc.err, got.Name(), tc.want.Name())
		}
	}
	// The reason for all this: errors.As finds the cause's code first.
	err := fmt.Errorf("bad reply: %w: %w", notFound, Network)
	var c Code
	if !errors.As(err, &c) || c != NotFound {
		t.Fatalf("errors.As found %s: the test no longer shows why Of walks by depth", c.Name())
	}
	// And the cause is still found.
	if !errors.Is(fmt.Errorf("get: %w: %w", context.DeadlineExceeded, Network), context.DeadlineExceeded) {
		t.Fatal("the cause is lost")
	}
}
