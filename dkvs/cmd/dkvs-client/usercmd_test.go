package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	steps := []struct {
		name string
		args []string
		code errcode.Code
		out  string // in stdout ("" anything)
		msg  string // in stderr
	}{
		{"add", []string{"user", "add", "--users", users, "--rights", "read", "--prefixes", "app/,cache/", "--", "alice"}, errcode.None, "", "shown once"},
		{"add default rights", []string{"user", "add", "--users", users, "--", "bob"}, errcode.None, "", ""},
		{"list", []string{"user", "list", "--users", users}, errcode.None, "alice read app/,cache/\nbob read,write *\n", ""},
		{"del", []string{"user", "del", "--users", users, "--", "bob"}, errcode.None, "OK", ""},
		{"del again", []string{"user", "del", "--users", users, "--", "bob"}, errcode.NotFound, "", "no such user"},
		{"bad right", []string{"user", "add", "--users", users, "--rights", "exec", "--", "carol"}, errcode.InvalidCommand, "", `right "exec"`},
		{"bad prefixes", []string{"user", "add", "--users", users, "--prefixes", "a,,b", "--", "carol"}, errcode.InvalidCommand, "", "--prefixes"},
		{"bad name", []string{"user", "add", "--users", users, "--", "ca rol"}, errcode.InvalidCommand, "", "user name"},
		{"no name", []string{"user", "add", "--users", users}, errcode.InvalidCommand, "", "a user name"},
		{"no subcommand", []string{"user"}, errcode.InvalidCommand, "", "want add, del or list"},
		{"unreadable file", []string{"user", "list", "--users", dir}, errcode.IO, "", "users file"},
	}
	for _, st := range steps {
		out, errs, code := runCLI(t, dir, st.args...)
		if code != st.code.ExitStatus() || !strings.Contains(out, st.out) || !strings.Contains(errs, st.msg) {
			t.Errorf("%s: exit %d, want %d; stdout %q (want %q), stderr %q (want %q)", st.name, code, st.code.ExitStatus(), firstLine(out), st.out, errs, st.msg)
		}
	}
	if err := os.WriteFile(users, []byte("broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCLI(t, dir, "user", "list", "--users", users); code != errcode.InvalidConfig.ExitStatus() {
		t.Errorf("list of a bad file: exit %d: %s", code, errs)
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  t0k \nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every case fails before it connects: the servers file names port 1.
	if err := os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code errcode.Code
		msg  string
	}{
		{"user without token", []string{"--user", "a", "get", "--", "k"}, errcode.InvalidCommand, "needs --token-file or --token"},
		{"token without user", []string{"--token", "t", "get", "--", "k"}, errcode.InvalidCommand, "needs --user"},
		{"both tokens", []string{"--user", "a", "--token", "t", "--token-file", tokenFile, "get", "--", "k"}, errcode.InvalidCommand, "give one"},
		{"missing token file", []string{"--user", "a", "--token-file", tokenFile + ".none", "get", "--", "k"}, errcode.IO, "--token-file"},
		{"empty token file", []string{"--user", "a", "--token-file", empty, "get", "--", "k"}, errcode.InvalidConfig, "empty"},
	}
	for _, tc := range tests {
		_, errs, code := runCLI(t, dir, tc.args...)
		if code != tc.code.ExitStatus() || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d, want %d; stderr %q, want %q", tc.name, code, tc.code.ExitStatus(), errs, tc.msg)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
