package dkvs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/dkvs/storage"
)

// startSecureServer starts one in-process server with users and returns
// its config. Without TLS no peer can prove membership, so the ring is
// one server: this tests the client's side of authentication; tests/
// runs rings over TLS.
func startSecureServer(t *testing.T, users string) []config.Server {
	t.Helper()
	tb, err := auth.Parse(strings.NewReader(users))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servers := []config.Server{{IP: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port), Count: 1}}
	s, err := server.New(server.Config{Addr: servers[0].Addr(), Servers: servers, Storage: storage.Options{InMemory: true},
		Users: auth.NewStore(tb), DisableAntiEntropy: true, DisableHandoff: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); s.Close(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return servers
}

func usersLine(name, rights, prefixes, token string) string {
	h := auth.HashToken(token)
	return fmt.Sprintf("%s %s %s sha256:%x\n", name, rights, prefixes, h[:])
}

func TestClientAuth(t *testing.T) {
	servers := startSecureServer(t, usersLine("app", "read,write", "app/", "apptok")+usersLine("ro", "read", "*", "rotok"))
	type op struct {
		name string
		do   func(c *dkvs.Client) error
		want error // nil, auth.ErrDenied or auth.ErrAuthRequired
	}
	put := func(key string) func(c *dkvs.Client) error {
		return func(c *dkvs.Client) error { return c.Put(ctx, []byte(key), []byte("v"), 1, 1) }
	}
	get := func(key string) func(c *dkvs.Client) error {
		return func(c *dkvs.Client) error { _, err := c.Get(ctx, []byte(key), 1, 1); return err }
	}
	tests := []struct {
		name, user, token string
		via               bool
		ops               []op
	}{
		{"writer", "app", "apptok", false, []op{
			{"put in prefix", put("app/1"), nil},
			{"get in prefix", get("app/1"), nil},
			{"put outside", put("etc/1"), auth.ErrDenied},
			{"delete outside", func(c *dkvs.Client) error { return c.Delete(ctx, []byte("etc/1"), 1, 1) }, auth.ErrDenied},
			{"dump", func(c *dkvs.Client) error { return c.Dump(ctx, func(k, v []byte) error { return nil }) }, auth.ErrDenied},
			{"stats", func(c *dkvs.Client) error { _, err := c.Stats(ctx, servers[0].Addr()); return err }, nil},
		}},
		{"writer via", "app", "apptok", true, []op{
			{"put in prefix", put("app/2"), nil},
			{"put outside", put("etc/2"), auth.ErrDenied},
		}},
		{"reader", "ro", "rotok", false, []op{
			{"get", get("app/1"), nil},
			{"put", put("app/1"), auth.ErrDenied},
		}},
		{"wrong token", "app", "rotok", false, []op{
			{"get", get("app/1"), auth.ErrDenied},
			{"put", put("app/3"), auth.ErrDenied},
		}},
		{"wrong token via", "app", "rotok", true, []op{{"put", put("app/3"), auth.ErrDenied}}},
		{"no credentials", "", "", false, []op{
			{"get", get("app/1"), auth.ErrAuthRequired},
			{"put", put("app/3"), auth.ErrAuthRequired},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &dkvs.Options{User: tc.user, Token: tc.token, RefusedRetry: -1}
			if tc.via {
				o.Via = servers[0].Addr()
			}
			c, err := dkvs.New(servers, o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, o := range tc.ops {
				err := o.do(c)
				switch {
				case o.want == nil && err != nil:
					t.Errorf("%s: %v", o.name, err)
				case o.want != nil && !errors.Is(err, o.want):
					t.Errorf("%s: %v, want %v", o.name, err, o.want)
				case o.want != nil && errcode.Of(err) != errcode.InvalidConfig:
					t.Errorf("%s: code %s (%v), want ERR_INVALID_CONFIG", o.name, errcode.Of(err).Name(), err)
				}
			}
		})
	}
	// Nothing refused was stored.
	c, err := dkvs.New(servers, &dkvs.Options{User: "ro", Token: "rotok"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range []string{"etc/1", "etc/2", "app/3"} {
		if _, err := c.Get(ctx, []byte(k), 1, 1); !errors.Is(err, errcode.NotFound) {
			t.Errorf("get %s after a refused write: %v, want not found", k, err)
		}
	}
}
