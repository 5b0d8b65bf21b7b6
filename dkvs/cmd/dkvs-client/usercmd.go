package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// defaultUsersFile is the users file "user" edits when neither --users
// nor DKVS_USERS names one.
const defaultUsersFile = "users.txt"

// userCommand edits a users file (dkvs-server --users): add prints the
// new token once, del removes a user, list shows names, rights and
// prefixes. The servers reload the file when it changes.
func (e *env) userCommand() *cli.Command {
	file := func() cli.Flag {
		return &cli.StringFlag{Name: "users", Value: defaultUsersFile, EnvVars: []string{"DKVS_USERS"}}
	}
	return &cli.Command{
		Name:            "user",
		HideHelp:        true,
		HideHelpCommand: true,
		OnUsageError:    e.usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cmdutil.UsageError("user: want add, del or list")
			}
			return cmdutil.UsageError("user: unknown subcommand %q: want add, del or list", c.Args().First())
		},
		Subcommands: []*cli.Command{
			e.command("add", e.userAdd, file(),
				&cli.StringFlag{Name: "rights", Value: "read,write"},
				&cli.StringFlag{Name: "prefixes", Value: "*"}),
			e.command("del", e.userDel, file()),
			e.command("list", e.userList, file()),
		},
	}
}

// usersFileError gives a users file's error its code: a file that does
// not parse is a bad configuration, one that cannot be read an I/O error.
func usersFileError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrBadFile):
		return fmt.Errorf("%w: %w", err, errcode.InvalidConfig)
	case errors.Is(err, auth.ErrNoUser):
		return fmt.Errorf("%w: %w", err, errcode.NotFound)
	}
	return fmt.Errorf("%w: %w", err, errcode.IO)
}

func (e *env) userAdd(c *cli.Context, args []string) error {
	if err := wantArgs(args, 1, 1, "a user name"); err != nil {
		return err
	}
	if err := auth.CheckName(args[0]); err != nil {
		return cmdutil.UsageError("%s", errcode.Detail(err))
	}
	rights, err := auth.ParseRights(c.String("rights"))
	if err != nil {
		return cmdutil.UsageError("--rights: %s", strings.TrimPrefix(err.Error(), auth.ErrBadFile.Error()+": "))
	}
	prefixes, err := auth.ParsePrefixes(c.String("prefixes"))
	if err != nil || strings.ContainsAny(c.String("prefixes"), " \t\n") {
		return cmdutil.UsageError("--prefixes %q: a comma list of key prefixes, * for every key, - for none", c.String("prefixes"))
	}
	token, err := auth.Add(c.String("users"), args[0], rights, prefixes, rand.Reader)
	if err != nil {
		return usersFileError(err)
	}
	fmt.Fprintln(e.stdout, token)
	fmt.Fprintf(e.stderr, "user %q added to %s with %s on %s; the token above is shown once: keep it (e.g. in a file for --token-file)\n",
		args[0], c.String("users"), rights, c.String("prefixes"))
	return nil
}

func (e *env) userDel(c *cli.Context, args []string) error {
	if err := wantArgs(args, 1, 1, "a user name"); err != nil {
		return err
	}
	if err := auth.Delete(c.String("users"), args[0]); err != nil {
		return usersFileError(err)
	}
	fmt.Fprintln(e.stdout, "OK")
	return nil
}

func (e *env) userList(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	return usersFileError(auth.List(e.stdout, c.String("users")))
}

// credentials reads --user and the token (--token, or --token-file's
// first line) into opts. A token given without a user, or a user without
// a token, is a command-line error.
func credentials(c *cli.Context, opts *dkvs.Options) error {
	user, token, tokenFile := c.String("user"), c.String("token"), c.String("token-file")
	if token != "" && tokenFile != "" {
		return cmdutil.UsageError("--token and --token-file: give one")
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w: %w", err, errcode.IO)
		}
		token, _, _ = strings.Cut(string(b), "\n")
		token = strings.TrimSpace(token)
		if token == "" {
			return fmt.Errorf("--token-file %s: empty: %w", tokenFile, errcode.InvalidConfig)
		}
	}
	switch {
	case user == "" && token != "":
		return cmdutil.UsageError("a token needs --user (DKVS_USER)")
	case user != "" && token == "":
		return cmdutil.UsageError("--user %q needs --token-file or --token (DKVS_TOKEN_FILE, DKVS_TOKEN)", user)
	}
	opts.User, opts.Token = user, token
	return nil
}
