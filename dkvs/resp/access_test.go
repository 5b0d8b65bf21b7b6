package resp

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
)

// prefixAccess is a test Access: users with a token, a key prefix, and
// whether they may write; "*" reads the whole keyspace.
type prefixAccess map[string]struct {
	token, prefix string
	write         bool
}

func (a prefixAccess) CertUser(net.Conn) string { return "" }

func (a prefixAccess) Login(user, token string) (string, error) {
	for name, u := range a {
		if (user == "" || user == name) && u.token == token {
			return name, nil
		}
	}
	return "", ErrWrongPass
}

func (a prefixAccess) Allow(user string, reads, writes [][]byte, readsAll bool) error {
	u := a[user]
	for _, k := range reads {
		if !bytes.HasPrefix(k, []byte(u.prefix)) {
			return fmt.Errorf("%w: read %q", ErrNoPerm, k)
		}
	}
	for _, k := range writes {
		if !u.write || !bytes.HasPrefix(k, []byte(u.prefix)) {
			return fmt.Errorf("%w: write %q", ErrNoPerm, k)
		}
	}
	if readsAll && u.prefix != "" {
		return fmt.Errorf("%w: keyspace", ErrNoPerm)
	}
	return nil
}

func TestAccess(t *testing.T) {
	acc := prefixAccess{
		"app": {token: "apptok", prefix: "app/", write: true},
		"ro":  {token: "rotok", prefix: "", write: false},
	}
	const (
		noAuth   = "-NOAUTH Authentication required.\r\n"
		wrong    = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
		noPerm   = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
		ok       = "+OK\r\n"
		nilBulk  = "$-1\r\n"
		helloErr = "-NOAUTH HELLO must be called"
	)
	type step struct {
		cmd  []string
		want string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"before auth", []step{
			{[]string{"GET", "app/1"}, noAuth},
			{[]string{"SET", "app/1", "x"}, noAuth},
			{[]string{"PING"}, noAuth},
			{[]string{"SCAN", "0"}, noAuth},
			{[]string{"AUTH", "app", "rotok"}, wrong},
			{[]string{"AUTH", "nobody", "apptok"}, wrong},
			{[]string{"AUTH", "wrong"}, wrong},
			{[]string{"SET", "app/1", "x"}, noAuth},
		}},
		{"user and token", []step{
			{[]string{"AUTH", "app", "apptok"}, ok},
			{[]string{"SET", "app/1", "x"}, ok},
			{[]string{"GET", "app/1"}, "$1\r\nx\r\n"},
			{[]string{"SET", "etc/1", "x"}, noPerm},
			{[]string{"MSET", "app/2", "y", "etc/2", "y"}, noPerm},
			{[]string{"DEL", "etc/3"}, noPerm},
			{[]string{"GET", "etc/3"}, noPerm},
			{[]string{"SCAN", "0"}, noPerm},
			{[]string{"AUTH", "app", "bad"}, wrong},
			{[]string{"SET", "app/3", "z"}, ok}, // a failed AUTH keeps the user
		}},
		{"token alone", []step{
			{[]string{"AUTH", "rotok"}, ok},
			{[]string{"GET", "app/2"}, nilBulk},
			{[]string{"SET", "app/2", "y"}, noPerm},
		}},
		{"hello", []step{
			{[]string{"HELLO", "2", "AUTH", "app", "nope"}, wrong},
			{[]string{"GET", "app/1"}, noAuth},
			{[]string{"HELLO", "2", "AUTH", "ro", "rotok"}, ""},
			{[]string{"GET", "app/1"}, "$1\r\nx\r\n"},
		}},
	}
	f := newFake()
	_, addr := startServer(t, f, Options{Access: acc})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			for _, st := range tc.steps {
				c.send(bulkCmd(st.cmd...))
				got, err := c.reply()
				if err != nil {
					t.Fatalf("%v: %v", st.cmd, err)
				}
				if st.want == "" {
					if strings.HasPrefix(got, "-") {
						t.Fatalf("%v: %q", st.cmd, got)
					}
					continue
				}
				if got != st.want {
					t.Fatalf("%v: %q, want %q", st.cmd, got, st.want)
				}
			}
		})
	}
	t.Run("hello without auth", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(bulkCmd("HELLO", "3"))
		if got, _ := c.reply(); !strings.HasPrefix(got, helloErr) {
			t.Fatalf("HELLO 3 before AUTH: %q", got)
		}
	})
	for _, k := range []string{"etc/1", "etc/2", "app/2", "app/4"} {
		if _, found := f.value(k); found {
			t.Errorf("%s stored by a refused command", k)
		}
	}
}
