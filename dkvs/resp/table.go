package resp

import (
	"sort"
	"strings"

	"github.com/tidwall/redcon"
)

// cmdDoc is what COMMAND DOCS tells about a command, in the shape Redis 7
// uses, so that redis-cli can build its help and hints from it.
type cmdDoc struct {
	summary, since, group, complexity string
	args                              []argDoc
}

// argDoc is one argument in COMMAND DOCS. typ is one of Redis's argument
// types: key, string, integer, pure-token, oneof, block.
type argDoc struct {
	name, typ, token string
	optional, multi  bool
	args             []argDoc
}

func key(name string) argDoc     { return argDoc{name: name, typ: "key"} }
func str(name string) argDoc     { return argDoc{name: name, typ: "string"} }
func integer(name string) argDoc { return argDoc{name: name, typ: "integer"} }
func token(name string) argDoc {
	return argDoc{name: strings.ToLower(name), typ: "pure-token", token: name}
}
func opt(a argDoc) argDoc           { a.optional = true; return a }
func multi(a argDoc) argDoc         { a.multi = true; return a }
func tok(t string, a argDoc) argDoc { a.token = t; return a }
func oneof(name string, as ...argDoc) argDoc {
	return argDoc{name: name, typ: "oneof", args: as}
}
func block(name string, as ...argDoc) argDoc {
	return argDoc{name: name, typ: "block", args: as}
}

// newCommandTable returns the commands the server knows, by lower-case
// name. Arities, flags, key positions and docs follow Redis 7.0.
func (s *Server) newCommandTable() map[string]*command {
	cmds := []*command{
		{name: "get", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"@read", "@string", "@fast"}, prepare: s.prepareGet,
			doc: cmdDoc{"Returns the string value of a key.", "1.0.0", "string", "O(1)", []argDoc{key("key")}}},
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1,
			acl: []string{"@write", "@string", "@slow"}, prepare: s.prepareSet,
			doc: cmdDoc{"Sets the string value of a key. Expiry and conditional options are refused by dkvs.", "1.0.0", "string", "O(1)",
				[]argDoc{key("key"), str("value"),
					opt(oneof("condition", token("NX"), token("XX"))),
					opt(token("GET")),
					opt(oneof("expiration", tok("EX", integer("seconds")), tok("PX", integer("milliseconds")),
						tok("EXAT", integer("unix-time-seconds")), tok("PXAT", integer("unix-time-milliseconds")), token("KEEPTTL")))}}},
		{name: "del", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"@keyspace", "@write", "@slow"}, prepare: s.prepareDel,
			doc: cmdDoc{"Deletes one or more keys and returns how many existed (not atomic in dkvs).", "1.0.0", "generic", "O(N) where N is the number of keys", []argDoc{multi(key("key"))}}},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"@keyspace", "@read", "@fast"}, prepare: s.prepareExists,
			doc: cmdDoc{"Determines whether one or more keys exist.", "1.0.0", "generic", "O(N) where N is the number of keys", []argDoc{multi(key("key"))}}},
		{name: "mget", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1,
			acl: []string{"@read", "@string", "@fast"}, prepare: s.prepareMGet,
			doc: cmdDoc{"Returns the string values of one or more keys (read one by one, not atomically, in dkvs).", "1.0.0", "string", "O(N) where N is the number of keys", []argDoc{multi(key("key"))}}},
		{name: "mset", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2,
			acl: []string{"@write", "@string", "@slow"}, prepare: s.prepareMSet,
			doc: cmdDoc{"Sets the string values of one or more keys (not atomic in dkvs).", "1.0.1", "string", "O(N) where N is the number of keys", []argDoc{multi(block("data", key("key"), str("value")))}}},
		{name: "scan", arity: -2, flags: []string{"readonly"},
			acl: []string{"@keyspace", "@read", "@slow"}, prepare: s.prepareScan,
			doc: cmdDoc{"Iterates over the key names in the ring, in key order.", "2.8.0", "generic", "O(1) for every call. O(N) for a complete iteration.",
				[]argDoc{integer("cursor"), opt(tok("MATCH", str("pattern"))), opt(tok("COUNT", integer("count"))), opt(tok("TYPE", str("type")))}}},
		{name: "keys", arity: 2, flags: []string{"readonly"},
			acl: []string{"@keyspace", "@read", "@slow", "@dangerous"}, prepare: s.prepareKeys,
			doc: cmdDoc{"Returns all key names that match a pattern.", "1.0.0", "generic", "O(N) with N being the number of keys in the ring", []argDoc{str("pattern")}}},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"},
			acl: []string{"@keyspace", "@read", "@fast"}, prepare: s.prepareDBSize,
			doc: cmdDoc{"Returns the number of keys in the ring.", "1.0.0", "server", "O(1)", nil}},
		{name: "info", arity: -1, flags: []string{"loading", "stale"},
			acl: []string{"@slow", "@dangerous"}, prepare: s.prepareInfo,
			doc: cmdDoc{"Returns information and statistics about the server and the ring.", "1.0.0", "server", "O(1)", []argDoc{opt(multi(str("section")))}}},
		{name: "ping", arity: -1, flags: []string{"fast"},
			acl: []string{"@fast", "@connection"}, local: localPing,
			doc: cmdDoc{"Returns the server's liveliness response.", "1.0.0", "connection", "O(1)", []argDoc{opt(str("message"))}}},
		{name: "echo", arity: 2, flags: []string{"fast"},
			acl: []string{"@fast", "@connection"}, local: localEcho,
			doc: cmdDoc{"Returns the given string.", "1.0.0", "connection", "O(1)", []argDoc{str("message")}}},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"},
			acl: []string{"@fast", "@connection"}, local: localSelect,
			doc: cmdDoc{"Changes the selected database; dkvs has only database 0.", "1.0.0", "connection", "O(1)", []argDoc{integer("index")}}},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"},
			acl: []string{"@fast", "@connection"}, local: localHello,
			doc: cmdDoc{"Handshakes with the server and switches the connection to RESP2 or RESP3.", "6.0.0", "connection", "O(1)",
				[]argDoc{opt(block("arguments", integer("protover"),
					opt(tok("AUTH", block("auth", str("username"), str("password")))),
					opt(tok("SETNAME", str("clientname")))))}}},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"},
			acl: []string{"@fast", "@connection"}, local: localAuth,
			doc: cmdDoc{"Authenticates the connection (dkvs has no passwords).", "1.0.0", "connection", "O(N)", []argDoc{opt(str("username")), str("password")}}},
		{name: "client", arity: -2, flags: []string{"noscript", "loading", "stale"},
			acl: []string{"@slow", "@connection"}, local: localClient,
			doc: cmdDoc{"A container for client connection commands: SETNAME, GETNAME, ID, INFO, LIST, SETINFO.", "2.4.0", "connection", "Depends on subcommand.", nil}},
		{name: "config", arity: -2, flags: []string{"noscript", "loading", "stale"},
			acl: []string{"@slow"}, local: localConfig,
			doc: cmdDoc{"A container for server configuration commands: GET only.", "2.0.0", "server", "Depends on subcommand.", nil}},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"},
			acl: []string{"@fast", "@connection"}, local: localQuit,
			doc: cmdDoc{"Closes the connection.", "1.0.0", "connection", "O(1)", nil}},
		{name: "command", arity: -1, flags: []string{"loading", "stale"},
			acl: []string{"@slow", "@connection"}, local: s.localCommand,
			doc: cmdDoc{"Returns detailed information about all commands.", "2.8.13", "server", "O(N) where N is the total number of commands", nil}},
	}
	m := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		m[c.name] = c
	}
	return m
}

// sortedCommands returns the commands in name order, for stable replies.
func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.commands))
	for _, c := range s.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// localCommand answers COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS
// and COMMAND LIST.
func (s *Server) localCommand(c *conn, args [][]byte) ([]byte, bool) {
	pr := c.protocol()
	if len(args) == 1 {
		all := s.sortedCommands()
		out := redcon.AppendArray(nil, len(all))
		for _, cmd := range all {
			out = appendCommandInfo(out, pr, cmd)
		}
		return out, false
	}
	// named returns the commands named in args[2:], or all of them.
	named := func() ([]*command, []string) {
		if len(args) == 2 {
			all := s.sortedCommands()
			names := make([]string, len(all))
			for i, c := range all {
				names[i] = c.name
			}
			return all, names
		}
		var cmds []*command
		var names []string
		for _, a := range args[2:] {
			cmds = append(cmds, s.commands[lower(a)])
			names = append(names, string(a))
		}
		return cmds, names
	}
	switch sub := lower(args[1]); sub {
	case "count":
		if len(args) != 2 {
			return errOut(wrongArgs("command|count")), false
		}
		return redcon.AppendInt(nil, int64(len(s.commands))), false
	case "list":
		all := s.sortedCommands()
		out := redcon.AppendArray(nil, len(all))
		for _, cmd := range all {
			out = redcon.AppendBulkString(out, cmd.name)
		}
		return out, false
	case "info":
		cmds, _ := named()
		out := redcon.AppendArray(nil, len(cmds))
		for _, cmd := range cmds {
			if cmd == nil {
				out = pr.appendNull(out)
			} else {
				out = appendCommandInfo(out, pr, cmd)
			}
		}
		return out, false
	case "docs":
		// A map of name to doc; unknown names are left out, as in Redis.
		cmds, _ := named()
		var body []byte
		n := 0
		for _, cmd := range cmds {
			if cmd == nil {
				continue
			}
			body = redcon.AppendBulkString(body, cmd.name)
			body = appendCommandDoc(body, pr, cmd.doc)
			n++
		}
		return append(pr.appendMap(nil, n), body...), false
	}
	return errOut(unknownSub("command", string(args[1]))), false
}

// appendCommandInfo appends the ten-element COMMAND entry of Redis 7:
// name, arity, flags, first key, last key, step, ACL categories, tips,
// key specifications, subcommands. Flags, categories, tips, key
// specifications and subcommands are sets in RESP3, as in Redis 7.0.
func appendCommandInfo(out []byte, pr protocol, cmd *command) []byte {
	out = redcon.AppendArray(out, 10)
	out = redcon.AppendBulkString(out, cmd.name)
	out = redcon.AppendInt(out, int64(cmd.arity))
	out = pr.appendSet(out, len(cmd.flags))
	for _, f := range cmd.flags {
		out = redcon.AppendString(out, f)
	}
	out = redcon.AppendInt(out, int64(cmd.firstKey))
	out = redcon.AppendInt(out, int64(cmd.lastKey))
	out = redcon.AppendInt(out, int64(cmd.step))
	out = pr.appendSet(out, len(cmd.acl))
	for _, a := range cmd.acl {
		out = redcon.AppendString(out, a)
	}
	out = pr.appendSet(out, 0) // tips
	out = pr.appendSet(out, 0) // key specifications
	out = pr.appendSet(out, 0) // subcommands
	return out
}

// appendCommandDoc appends a command's doc map.
// Field names and string values are bulk strings and flags simple
// strings, as Redis sends them: redis-cli checks those types.
func appendCommandDoc(out []byte, pr protocol, d cmdDoc) []byte {
	n := 4
	if len(d.args) > 0 {
		n++
	}
	out = pr.appendMap(out, n)
	out = redcon.AppendBulkString(out, "summary")
	out = redcon.AppendBulkString(out, d.summary)
	out = redcon.AppendBulkString(out, "since")
	out = redcon.AppendBulkString(out, d.since)
	out = redcon.AppendBulkString(out, "group")
	out = redcon.AppendBulkString(out, d.group)
	out = redcon.AppendBulkString(out, "complexity")
	out = redcon.AppendBulkString(out, d.complexity)
	if len(d.args) > 0 {
		out = redcon.AppendBulkString(out, "arguments")
		out = appendArgDocs(out, pr, d.args)
	}
	return out
}

// appendArgDocs appends an array of argument maps; their flags are a set.
func appendArgDocs(out []byte, pr protocol, args []argDoc) []byte {
	out = redcon.AppendArray(out, len(args))
	for _, a := range args {
		var flags []string
		if a.optional {
			flags = append(flags, "optional")
		}
		if a.multi {
			flags = append(flags, "multiple")
		}
		n := 2
		if a.typ == "key" {
			n++
		}
		if a.token != "" {
			n++
		}
		if len(flags) > 0 {
			n++
		}
		if len(a.args) > 0 {
			n++
		}
		out = pr.appendMap(out, n)
		out = redcon.AppendBulkString(out, "name")
		out = redcon.AppendBulkString(out, a.name)
		out = redcon.AppendBulkString(out, "type")
		out = redcon.AppendBulkString(out, a.typ)
		if a.typ == "key" {
			out = redcon.AppendBulkString(out, "key_spec_index")
			out = redcon.AppendInt(out, 0)
		}
		if a.token != "" {
			out = redcon.AppendBulkString(out, "token")
			out = redcon.AppendBulkString(out, a.token)
		}
		if len(flags) > 0 {
			out = redcon.AppendBulkString(out, "flags")
			out = pr.appendSet(out, len(flags))
			for _, f := range flags {
				out = redcon.AppendString(out, f)
			}
		}
		if len(a.args) > 0 {
			out = redcon.AppendBulkString(out, "arguments")
			out = appendArgDocs(out, pr, a.args)
		}
	}
	return out
}
