package session

import (
	"context"
	"testing"
)

func TestSessionInContext(t *testing.T) {
	if FromContext(context.Background()) != nil {
		t.Fatal("a bare context carries a session")
	}
	s := New("127.0.0.1:9")
	ctx := NewContext(context.Background(), s)
	got := FromContext(ctx)
	if got != s {
		t.Fatalf("FromContext = %p, want %p", got, s)
	}
	if got.TLS() || got.Member() != "" || got.User() != "" {
		t.Fatalf("new session not empty: tls=%v member=%q user=%q", got.TLS(), got.Member(), got.User())
	}
	s.SetTLS("127.0.0.1:5001", "")
	s.SetUser("alice")
	tests := []struct{ name, got, want string }{
		{"remote", got.Remote(), "127.0.0.1:9"},
		{"member", got.Member(), "127.0.0.1:5001"},
		{"user", got.User(), "alice"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if !got.TLS() {
		t.Error("TLS() = false after SetTLS")
	}
	s.SetTLS("", "")
	if got.User() != "alice" {
		t.Errorf("SetTLS with no user dropped the user: %q", got.User())
	}
}

func TestFirstRefusal(t *testing.T) {
	s := New("127.0.0.1:9")
	for i, want := range []bool{true, false, false} {
		if got := s.FirstRefusal(); got != want {
			t.Fatalf("call %d: FirstRefusal = %v, want %v", i, got, want)
		}
	}
}
