package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

func TestParseValid(t *testing.T) {
	in := "127.0.0.1 1234 1\n192.168.1.10 1235 2\n8.8.8.8 1236 3\n"
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{{"127.0.0.1", 1234, 1}, {"192.168.1.10", 1235, 2}, {"8.8.8.8", 1236, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got[1].Addr() != "192.168.1.10:1235" || got[1].String() != "192.168.1.10 1235" {
		t.Fatalf("Addr/String: %q %q", got[1].Addr(), got[1].String())
	}
}

func TestParseTolerates(t *testing.T) {
	for _, in := range []string{
		"127.0.0.1 1234 1",           // no final newline
		"\n127.0.0.1 1234 1\n\n",     // blank lines
		"127.0.0.1 1234 1\r\n",       // CRLF
		"127.0.0.1  1234\t1\n",       // extra blanks
		"127.0.0.1 65535 4096\n",     // upper bounds
		"0.0.0.0 1 1\n1.2.3.4 1 1\n", // same port, other IP
		"127.0.0.1 1234 1\n127.0.0.1 1235 1\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in   string
		want errcode.Code
	}{
		{"127.0.001 1234 1\n", errcode.Address},
		{"256.0.0.1 1234 1\n", errcode.Address},
		{"127.0.0.01 1234 1\n", errcode.Address},
		{"127.0.0 1234 1\n", errcode.Address},
		{"localhost 1234 1\n", errcode.Address},
		{"::1 1234 1\n", errcode.Address},
		{"1.2.3.4.5 1234 1\n", errcode.Address},
		{"127.0.0.1 abc 1\n", errcode.InvalidConfig},
		{"127.0.0.1 0 1\n", errcode.InvalidConfig},
		{"127.0.0.1 -1 1\n", errcode.InvalidConfig},
		{"127.0.0.1 65536 1\n", errcode.InvalidConfig},
		{"127.0.0.1 1234abc 1\n", errcode.InvalidConfig},
		{"127.0.0.1 +1234 1\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 abc\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 0\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 -2\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 4097\n", errcode.InvalidConfig},
		{"127.0.0.1 1234\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 1 9\n", errcode.InvalidConfig},
		{"", errcode.InvalidConfig},
		{"\n\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 1\n127.0.0.1 1234 2\n", errcode.InvalidConfig},
	}
	for _, tc := range cases {
		_, err := Parse(strings.NewReader(tc.in))
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v (%s), want %s", tc.in, err, errcode.Of(err).Name(), tc.want.Name())
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.txt")); !errors.Is(err, errcode.IO) {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(dir, "servers.txt")
	if err := os.WriteFile(p, []byte("127.0.0.1 1234 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil || len(s) != 1 {
		t.Fatalf("Load: %v %v", s, err)
	}
	if Find(s, "127.0.0.1:1234") != 0 || Find(s, "127.0.0.1:1") != -1 {
		t.Fatal("Find")
	}
}
