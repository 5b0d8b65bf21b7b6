package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

func newSecureServer(t *testing.T, users string) *Server {
	t.Helper()
	tb, err := auth.Parse(strings.NewReader(users))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Addr:    "127.0.0.1:1",
		Servers: []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}},
		Storage: storage.Options{InMemory: true},
		Users:   auth.NewStore(tb),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func userLine(name, rights, prefixes, token string) string {
	h := auth.HashToken(token)
	return fmt.Sprintf("%s %s %s sha256:%x\n", name, rights, prefixes, h[:])
}

// TestAuthorizeRequests runs requests on connections of each kind, with
// the session set as the transport and TLS would set it, and checks the
// answer and that a refused request stored nothing.
func TestAuthorizeRequests(t *testing.T) {
	s := newSecureServer(t, userLine("reader", "read", "app/", "rtok")+
		userLine("writer", "read,write", "app/", "wtok")+userLine("admin", "admin", "-", "atok"))
	coordPut := func(key string) []byte {
		return wire.CoordRequest{Params: wire.CoordParams{Flags: wire.CoordDefaults}, Key: []byte(key), Value: []byte("v")}.Append(nil, wire.OpCoordPut)
	}
	type step struct {
		name   string
		op     wire.Op
		body   []byte
		status wire.Status
		stored string // a key that must then exist ("" nothing to check)
		absent string // a key that must not exist
	}
	authAs := func(user, token string) []byte { return wire.AuthRequest{User: user, Token: token}.Append(nil) }
	tests := []struct {
		name   string
		member string
		steps  []step
	}{
		{"anonymous", "", []step{
			{"ping", wire.OpPing, nil, wire.StatusOK, "", ""},
			{"get", wire.OpGet, wire.GetRequest{Key: []byte("app/1")}.Append(nil), wire.StatusAuthRequired, "", ""},
			{"put", wire.OpPut, put("app/1", 5, "v"), wire.StatusAuthRequired, "", "app/1"},
			{"coord-put", wire.OpCoordPut, coordPut("app/1"), wire.StatusAuthRequired, "", "app/1"},
			{"malformed put", wire.OpPut, []byte{9}, wire.StatusAuthRequired, "", ""},
			{"stats", wire.OpStats, nil, wire.StatusAuthRequired, "", ""},
			{"ring", wire.OpRing, nil, wire.StatusAuthRequired, "", ""},
			{"wrong token", wire.OpAuth, authAs("writer", "rtok"), wire.StatusDenied, "", ""},
			{"unknown user", wire.OpAuth, authAs("nobody", "wtok"), wire.StatusDenied, "", ""},
			{"malformed auth", wire.OpAuth, []byte{1}, wire.StatusBadRequest, "", ""},
			{"still anonymous", wire.OpPut, put("app/1", 5, "v"), wire.StatusAuthRequired, "", "app/1"},
		}},
		{"reader", "", []step{
			{"auth", wire.OpAuth, authAs("reader", "rtok"), wire.StatusOK, "", ""},
			{"get", wire.OpGet, wire.GetRequest{Key: []byte("app/1")}.Append(nil), wire.StatusNotFound, "", ""},
			{"get outside", wire.OpGet, wire.GetRequest{Key: []byte("etc/1")}.Append(nil), wire.StatusDenied, "", ""},
			{"put", wire.OpPut, put("app/1", 5, "v"), wire.StatusDenied, "", "app/1"},
			{"coord-put", wire.OpCoordPut, coordPut("app/1"), wire.StatusDenied, "", "app/1"},
			{"stats", wire.OpStats, nil, wire.StatusOK, "", ""},
			{"scan", wire.OpScan, wire.ScanRequest{}.Append(nil), wire.StatusDenied, "", ""},
		}},
		{"writer", "", []step{
			{"auth", wire.OpAuth, authAs("writer", "wtok"), wire.StatusOK, "", ""},
			{"put outside", wire.OpPut, put("etc/1", 5, "v"), wire.StatusDenied, "", "etc/1"},
			{"coord-put outside", wire.OpCoordPut, coordPut("etc/2"), wire.StatusDenied, "", "etc/2"},
			{"put", wire.OpPut, put("app/1", 5, "v"), wire.StatusOK, "app/1", ""},
			{"coord-put", wire.OpCoordPut, coordPut("app/2"), wire.StatusOK, "app/2", ""},
			{"put-batch", wire.OpPutBatch, wire.PutBatch{}.Append(nil), wire.StatusDenied, "", ""},
			{"ae-tree", wire.OpAETree, nil, wire.StatusDenied, "", ""},
			{"ring-change", wire.OpRingChange, []byte("{}"), wire.StatusDenied, "", ""},
			{"relogin as reader", wire.OpAuth, authAs("reader", "rtok"), wire.StatusOK, "", ""},
			{"put as reader", wire.OpPut, put("app/3", 5, "v"), wire.StatusDenied, "", "app/3"},
		}},
		{"admin", "", []step{
			{"auth", wire.OpAuth, authAs("admin", "atok"), wire.StatusOK, "", ""},
			{"scan", wire.OpScan, wire.ScanRequest{}.Append(nil), wire.StatusOK, "", ""},
			{"put", wire.OpPut, put("app/4", 5, "v"), wire.StatusDenied, "", "app/4"},
			{"raft", wire.OpRaft, nil, wire.StatusDenied, "", ""},
		}},
		{"member", "127.0.0.1:2", []step{
			{"put-batch", wire.OpPutBatch, wire.PutBatch{}.Append(nil), wire.StatusOK, "", ""},
			{"put", wire.OpPut, put("etc/9", 5, "v"), wire.StatusOK, "etc/9", ""},
			{"scan", wire.OpScan, wire.ScanRequest{}.Append(nil), wire.StatusOK, "", ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sess := session.New("10.1.1.1:1000")
			if tc.member != "" {
				sess.SetTLS(tc.member, "")
			}
			ctx := session.NewContext(context.Background(), sess)
			for _, st := range tc.steps {
				got := s.Handle(ctx, wire.Frame{Kind: uint8(st.op), Body: st.body})
				if got.Status() != st.status {
					msg, _ := wire.DecodeMessage(got.Body)
					t.Fatalf("%s: %s (%s), want %s", st.name, got.Status(), msg, st.status)
				}
				if st.stored != "" {
					if _, found, _ := s.db.Get([]byte(st.stored)); !found {
						t.Fatalf("%s: %q not stored", st.name, st.stored)
					}
				}
				if st.absent != "" {
					if _, found, _ := s.db.Get([]byte(st.absent)); found {
						t.Fatalf("%s: refused and yet %q is stored", st.name, st.absent)
					}
				}
			}
		})
	}
}

// TestCertificateUser: a client certificate naming a user makes the
// connection that user's without a token.
func TestCertificateUser(t *testing.T) {
	s := newSecureServer(t, userLine("carol", "write", "c/", "ctok"))
	sess := session.New("10.1.1.1:1000")
	sess.SetTLS("", "carol")
	ctx := session.NewContext(context.Background(), sess)
	for _, tc := range []struct {
		key    string
		status wire.Status
	}{{"c/1", wire.StatusOK}, {"d/1", wire.StatusDenied}} {
		if got := s.Handle(ctx, wire.Frame{Kind: uint8(wire.OpPut), Body: put(tc.key, 5, "v")}); got.Status() != tc.status {
			t.Errorf("put %s: %s, want %s", tc.key, got.Status(), tc.status)
		}
	}
}

// TestOpenServerAuth: a server without users serves everyone, and
// accepts an auth request without checking it.
func TestOpenServerAuth(t *testing.T) {
	s := newServer(t)
	ctx := session.NewContext(context.Background(), session.New("10.1.1.1:1000"))
	for _, f := range []wire.Frame{
		{Kind: uint8(wire.OpAuth), Body: wire.AuthRequest{User: "x", Token: "y"}.Append(nil)},
		{Kind: uint8(wire.OpPut), Body: put("k", 5, "v")},
		{Kind: uint8(wire.OpPutBatch), Body: wire.PutBatch{}.Append(nil)},
	} {
		if got := s.Handle(ctx, f); got.Status() != wire.StatusOK {
			t.Errorf("%s: %s, want ok", f.Op(), got.Status())
		}
	}
}

// BenchmarkHandleGetAuth is a replica get answered in process, on a
// server without users and on one with users (the check of the session
// and of the key's prefix added).
func BenchmarkHandleGetAuth(b *testing.B) {
	for _, users := range []bool{false, true} {
		b.Run(fmt.Sprintf("users=%v", users), func(b *testing.B) {
			cfg := Config{Addr: "127.0.0.1:1", Servers: []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}},
				Storage: storage.Options{InMemory: true}}
			sess := session.New("10.1.1.1:1000")
			if users {
				tb, err := auth.Parse(strings.NewReader(userLine("app", "read,write", "app/,cache/", "t")))
				if err != nil {
					b.Fatal(err)
				}
				cfg.Users = auth.NewStore(tb)
				sess.SetUser("app")
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := session.NewContext(context.Background(), sess)
			if f := s.Handle(ctx, wire.Frame{Kind: uint8(wire.OpPut), Body: put("app/k", 5, "value")}); f.Status() != wire.StatusOK {
				b.Fatalf("put: %s", f.Status())
			}
			req := wire.Frame{Kind: uint8(wire.OpGet), Body: wire.GetRequest{Key: []byte("app/k")}.Append(nil)}
			for b.Loop() {
				if f := s.Handle(ctx, req); f.Status() != wire.StatusOK {
					b.Fatalf("get: %s", f.Status())
				}
			}
		})
	}
}
