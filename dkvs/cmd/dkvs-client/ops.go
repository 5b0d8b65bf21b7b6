package main

import (
	"bytes"
	"strconv"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// session is an open client and the replication of its requests: what an
// operation runs on, for one command or for every line of the shell.
type session struct {
	e   *env
	cl  *dkvs.Client
	req dkvs.Request
}

// ok prints "OK" or "OK <value>".
func (s *session) ok(value []byte) error {
	var b bytes.Buffer
	b.Grow(len(value) + 4)
	if value == nil {
		b.WriteString("OK\n")
	} else {
		b.WriteString("OK ")
		b.Write(value)
		b.WriteByte('\n')
	}
	_, err := s.e.stdout.Write(b.Bytes())
	return err
}

// op is an operation of the DKVS command line, shared by the commands and
// the shell. check validates the arguments before anything is sent (a
// command-line error, ERR_INVALID_COMMAND); run runs the operation and
// marks its failures with failed, so that FAIL is printed.
type op struct {
	name, usage string
	min, max    int // arguments; max -1: no limit
	parse       func(args []string) error
	do          func(s *session, args []string) error
}

func (o *op) check(args []string) error {
	if err := wantArgs(args, o.min, o.max, o.usage); err != nil {
		return err
	}
	if o.parse != nil {
		return o.parse(args)
	}
	return nil
}

func (o *op) run(s *session, args []string) error {
	if err := o.do(s, args); err != nil {
		return failed{err}
	}
	return nil
}

var (
	opGet = &op{name: "get", usage: "key", min: 1, max: 1, do: func(s *session, a []string) error {
		v, err := s.cl.GetWith(s.e.ctx, []byte(a[0]), s.req)
		if err != nil {
			return err
		}
		return s.ok(v)
	}}
	opPut = &op{name: "put", usage: "key value", min: 2, max: 2, do: func(s *session, a []string) error {
		if err := s.cl.PutWith(s.e.ctx, []byte(a[0]), []byte(a[1]), s.req); err != nil {
			return err
		}
		return s.ok(nil)
	}}
	opDel = &op{name: "del", usage: "key", min: 1, max: 1, do: func(s *session, a []string) error {
		if err := s.cl.DeleteWith(s.e.ctx, []byte(a[0]), s.req); err != nil {
			return err
		}
		return s.ok(nil)
	}}
	opCat = &op{name: "cat", usage: "key1 ... keyK dest", min: 2, max: -1, do: func(s *session, a []string) error {
		var joined []byte
		for _, k := range a[:len(a)-1] {
			v, err := s.cl.GetWith(s.e.ctx, []byte(k), s.req)
			if err != nil {
				return err
			}
			joined = append(joined, v...)
		}
		if err := s.cl.PutWith(s.e.ctx, []byte(a[len(a)-1]), joined, s.req); err != nil {
			return err
		}
		return s.ok(nil)
	}}
	opSubstr = &op{name: "substr", usage: "key pos len dest", min: 4, max: 4, parse: parseSubstr,
		do: func(s *session, a []string) error {
			pos, _ := strconv.Atoi(a[1])
			length, _ := strconv.Atoi(a[2])
			v, err := s.cl.GetWith(s.e.ctx, []byte(a[0]), s.req)
			if err != nil {
				return err
			}
			from, to, err := substrRange(len(v), pos, length)
			if err != nil {
				return err
			}
			if err := s.cl.PutWith(s.e.ctx, []byte(a[3]), v[from:to], s.req); err != nil {
				return err
			}
			return s.ok(nil)
		}}
	opFind = &op{name: "find", usage: "haystack_key needle_key", min: 2, max: 2, do: func(s *session, a []string) error {
		hay, err := s.cl.GetWith(s.e.ctx, []byte(a[0]), s.req)
		if err != nil {
			return err
		}
		needle, err := s.cl.GetWith(s.e.ctx, []byte(a[1]), s.req)
		if err != nil {
			return err
		}
		return s.ok([]byte(strconv.Itoa(bytes.Index(hay, needle))))
	}}
)

func parseSubstr(a []string) error {
	_, err1 := strconv.Atoi(a[1])
	_, err2 := strconv.Atoi(a[2])
	if err1 != nil || err2 != nil {
		return cmdutil.UsageError("position %q and length %q must be whole numbers", a[1], a[2])
	}
	return nil
}

// substrRange returns the byte range [start, start+length) of a value of
// size n that substr selects, or an error for a range outside the value.
func substrRange(n, pos, length int) (int, int, error) {
	if length < 0 {
		return 0, 0, errcode.Errorf(errcode.InvalidCommand, "length %d is negative", length)
	}
	start := pos
	if pos < 0 {
		start = n + pos
	}
	if start < 0 || start > n || length > n-start {
		return 0, 0, errcode.Errorf(errcode.InvalidCommand, "position %d and length %d fall outside a value of %d bytes", pos, length, n)
	}
	return start, start + length, nil
}
