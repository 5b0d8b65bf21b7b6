package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chzyer/readline"
	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/quorum"
)

const shellHelp = `Commands (arguments separated by spaces; quote them with "..." or '...'):
  get KEY                       print "OK <value>"
  put KEY VALUE                 store VALUE under KEY
  del KEY                       delete KEY
  cat KEY1 ... KEYK DEST        store the values of KEY1..KEYK, joined, under DEST
  substr KEY POS LEN DEST       store LEN bytes of KEY's value from POS under DEST
  find HAYSTACK NEEDLE          print "OK <index>" of NEEDLE's value in HAYSTACK's
  dump [IP:PORT]                every live pair of the ring, or what one server stores
  dump-ring                     the ring's nodes and what each server stores
  status                        every server: up or down, keys, hints, anti-entropy
  set                           show N, R, W and the consistency level
  set n|r|w NUMBER              set N, R or W for the next requests
  set level ONE|QUORUM|ALL|LINEARIZABLE|DEFAULT
                                set the consistency level (R and W follow it)
  help                          this text
  quit                          leave (so does end of input, ^D)
In "..." a backslash escapes the next character (\n and \t too); '...' is literal.
`

// shell runs the interactive console: one client, a line per request.
// A failed request prints FAIL and its ERROR line, as the command would,
// and the shell goes on; only quit or the end of input ends it. On a
// terminal it edits lines and keeps a history (~/.dkvs_history).
func (e *env) shell(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	return e.withSession(c, func(s *session) error {
		next, closeInput, err := e.lines()
		if err != nil {
			return err
		}
		defer closeInput()
		for {
			line, err := next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return fmt.Errorf("read input: %w", err)
			}
			if s.line(line) {
				return nil
			}
		}
	})
}

// lines returns a function reading the next line: from a line editor on
// a terminal, plainly otherwise (scripts, tests).
func (e *env) lines() (func() (string, error), func(), error) {
	if f, ok := e.stdin.(*os.File); ok && readline.IsTerminal(int(f.Fd())) {
		history := ""
		if home, err := os.UserHomeDir(); err == nil {
			history = filepath.Join(home, ".dkvs_history")
		}
		rl, err := readline.NewEx(&readline.Config{
			Prompt:          "dkvs> ",
			HistoryFile:     history,
			InterruptPrompt: "^C",
			EOFPrompt:       "quit",
			AutoComplete: readline.NewPrefixCompleter(
				readline.PcItem("get"), readline.PcItem("put"), readline.PcItem("del"),
				readline.PcItem("cat"), readline.PcItem("substr"), readline.PcItem("find"),
				readline.PcItem("dump"), readline.PcItem("dump-ring"), readline.PcItem("status"),
				readline.PcItem("set", readline.PcItem("n"), readline.PcItem("r"), readline.PcItem("w"),
					readline.PcItem("level", readline.PcItem("ONE"), readline.PcItem("QUORUM"),
						readline.PcItem("ALL"), readline.PcItem("LINEARIZABLE"), readline.PcItem("DEFAULT"))),
				readline.PcItem("help"), readline.PcItem("quit"),
			),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("line editor: %w", err)
		}
		fmt.Fprintln(e.stdout, `dkvs shell: "help" lists the commands, "quit" leaves.`)
		next := func() (string, error) {
			for {
				line, err := rl.Readline()
				if errors.Is(err, readline.ErrInterrupt) {
					continue // ^C drops the line being typed
				}
				return line, err
			}
		}
		return next, func() { rl.Close() }, nil
	}
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	next := func() (string, error) {
		if sc.Scan() {
			return sc.Text(), nil
		}
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return next, func() {}, nil
}

// shellOps are the operations the shell runs as the commands do.
var shellOps = map[string]*op{
	"get": opGet, "put": opPut, "del": opDel, "cat": opCat, "substr": opSubstr, "find": opFind,
}

// line runs one line of the shell and reports whether it was quit.
func (s *session) line(line string) (quit bool) {
	words, err := splitWords(line)
	if err != nil {
		s.report(cmdutil.UsageError("%v", err))
		return false
	}
	if len(words) == 0 {
		return false
	}
	cmd, args := words[0], words[1:]
	switch cmd {
	case "quit", "exit":
		return true
	case "help":
		fmt.Fprint(s.e.stdout, shellHelp)
	case "set":
		s.report(s.set(args))
	case "dump":
		if len(args) > 1 {
			s.report(cmdutil.UsageError("dump takes at most one IP:PORT"))
			break
		}
		addr := ""
		if len(args) == 1 {
			if err := checkAddr(args[0]); err != nil {
				s.report(err)
				break
			}
			addr = args[0]
		}
		s.report(s.dump(addr))
	case "dump-ring":
		s.report(s.dumpRing())
	case "status":
		s.report(s.status())
	default:
		o := shellOps[cmd]
		if o == nil {
			s.report(cmdutil.UsageError("unknown command %q (\"help\" lists them)", cmd))
			break
		}
		if err := o.check(args); err != nil {
			s.report(err)
			break
		}
		s.report(o.run(s, args))
	}
	return false
}

// report prints a failure as a command would: FAIL for a failed
// operation, and the ERROR line.
func (s *session) report(err error) {
	if err == nil {
		return
	}
	var f failed
	if errors.As(err, &f) {
		fmt.Fprintln(s.e.stdout, "FAIL")
	}
	cmdutil.Report(s.e.stderr, err)
}

// set shows or changes the replication of the next requests.
func (s *session) set(args []string) error {
	switch {
	case len(args) == 0:
	case len(args) == 2 && (args[0] == "n" || args[0] == "r" || args[0] == "w"):
		v, err := quorum.ParseCount(args[0], args[1])
		if err != nil {
			return err
		}
		next := s.req
		switch args[0] {
		case "n":
			next.N = v
		case "r":
			next.R = v
		case "w":
			next.W = v
		}
		if n, r, w := effective(next); r > n || w > n {
			return cmdutil.UsageError("R=%d and W=%d may not exceed N=%d", r, w, n)
		}
		s.req = next
	case len(args) == 2 && args[0] == "level":
		next := s.req
		next.R, next.W, next.Level, next.Linearizable = 0, 0, dkvs.LevelDefault, false
		switch strings.ToUpper(args[1]) {
		case "DEFAULT":
		case "LINEARIZABLE":
			next.Linearizable = true
		default:
			l, err := dkvs.ParseLevel(args[1])
			if err != nil {
				return cmdutil.UsageError("level %q: want ONE, QUORUM, ALL, LINEARIZABLE or DEFAULT", args[1])
			}
			next.Level = l
		}
		s.req = next
	default:
		return cmdutil.UsageError("want: set, set n|r|w NUMBER, or set level LEVEL")
	}
	n, r, w := effective(s.req)
	level := s.req.Level.String()
	if s.req.Linearizable {
		level = "LINEARIZABLE"
	}
	fmt.Fprintf(s.e.stdout, "n=%d r=%d w=%d level=%s\n", n, r, w, level)
	return nil
}

// effective returns the N, R and W a request will use before the ring
// clamps them: R and W given, or from the level (a majority in the
// linearizable mode).
func effective(req dkvs.Request) (n, r, w int) { return req.Counts() }

// splitWords splits a line into words: blanks separate them; "..." groups
// with backslash escapes (\n, \t, \\, \", and any other character taken
// as itself); '...' groups literally; a backslash outside quotes escapes
// the next character.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '...'")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
					switch line[i] {
					case 'n':
						cur.WriteByte('\n')
					case 't':
						cur.WriteByte('\t')
					default:
						cur.WriteByte(line[i])
					}
					continue
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New(`unterminated "..."`)
			}
		case ch == '\\' && i+1 < len(line):
			inWord = true
			i++
			cur.WriteByte(line[i])
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
