package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/tidwall/redcon"
)

// redisVersion is the Redis version the server reports in HELLO and INFO:
// the protocol level it mimics, for clients that check it.
const redisVersion = "7.0.0"

// command describes one command: how it is checked, how it runs and what
// COMMAND and COMMAND DOCS say about it.
type command struct {
	name  string
	arity int // as Redis: N means exactly N arguments with the name, -N at least N
	flags []string
	// firstKey, lastKey and step locate the keys among the arguments.
	firstKey, lastKey, step int
	acl                     []string
	doc                     cmdDoc

	// Exactly one of local and prepare is set. local runs in the reader
	// goroutine, in order with the other local commands (connection
	// state, constant replies); it returns the reply and whether to close
	// the connection after it.
	local func(c *conn, args [][]byte) (out []byte, quit bool)
	// prepare checks the arguments and returns the job to run.
	prepare func(c *conn, args [][]byte) job
}

// job is a command ready to run against the backend. If run is nil, out
// is the reply (an argument error found by prepare).
//
// A job whose work is a list of single-key operations says so with ops
// and reply instead of run: the connection then runs the ops of the
// commands pipelined together as one batch (see conn.dispatch), and
// reply makes the command's answer from their outcomes.
type job struct {
	reads, writes [][]byte
	readsAll      bool
	run           func(ctx context.Context) []byte
	out           []byte
	ops           []Op
	reply         func(ops []Op) []byte
}

// opsJob is the job of a command that runs ops and answers with reply.
func opsJob(reads, writes [][]byte, ops []Op, reply func([]Op) []byte) job {
	return job{reads: reads, writes: writes, ops: ops, reply: reply}
}

// batch runs ops on the backend: as one batch when it is a Batcher, else
// side by side, one call each.
func (s *Server) batch(ctx context.Context, ops []Op) {
	if b, ok := s.backend.(Batcher); ok {
		b.Batch(ctx, ops)
		return
	}
	forEach(ctx, len(ops), func(ctx context.Context, i int) error {
		op := &ops[i]
		switch op.Kind {
		case OpGet:
			op.Value, op.Err = s.b().Get(ctx, op.Key)
		case OpPut:
			op.Err = s.b().Put(ctx, op.Key, op.Value)
		case OpDelete:
			op.Err = s.b().Delete(ctx, op.Key)
		}
		return nil
	})
}

// firstError returns the first error among ops that is not NotFound.
func firstError(ops []Op) error {
	for _, op := range ops {
		if op.Err != nil && !isNotFound(op.Err) {
			return op.Err
		}
	}
	return nil
}

func replyJob(out []byte) job      { return job{out: out} }
func errJob(msg string) job        { return job{out: redcon.AppendError(nil, msg)} }
func errOut(msg string) []byte     { return redcon.AppendError(nil, msg) }
func okOut() []byte                { return redcon.AppendOK(nil) }
func (s *Server) b() Backend       { return s.backend }
func wrongArgs(name string) string { return "ERR wrong number of arguments for '" + name + "' command" }
func syntaxErr() string            { return "ERR syntax error" }
func notInteger() string           { return "ERR value is not an integer or out of range" }
func lower(b []byte) string        { return strings.ToLower(string(b)) }
func unknownSub(cmd, sub string) string {
	return fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", sub, strings.ToUpper(cmd))
}

// lookup finds the command of args and checks its arity; it returns the
// error reply text otherwise.
func (s *Server) lookup(args [][]byte) (*command, string) {
	cmd := s.commands[lower(args[0])]
	if cmd == nil {
		return nil, unknownCommand(args)
	}
	if (cmd.arity > 0 && len(args) != cmd.arity) || (cmd.arity < 0 && len(args) < -cmd.arity) {
		return nil, wrongArgs(cmd.name)
	}
	return cmd, ""
}

// unknownCommand builds Redis's message, quoting at most about 128 bytes
// of arguments.
func unknownCommand(args [][]byte) string {
	var sb strings.Builder
	for _, a := range args[1:] {
		if sb.Len() >= 128 {
			break
		}
		fmt.Fprintf(&sb, "'%.*s' ", 128-sb.Len(), a)
	}
	return fmt.Sprintf("ERR unknown command '%.128s', with args beginning with: %s", args[0], sb.String())
}

// backendError turns a backend error into a reply. NotFound never gets
// here: commands turn it into a nil or a zero.
func backendError(err error) []byte {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errOut("ERR timeout: " + err.Error())
	case errors.Is(err, context.Canceled):
		return errOut("ERR cancelled: " + err.Error())
	case errors.Is(err, errcode.InvalidArg):
		return errOut("ERR invalid argument: " + err.Error())
	default:
		return errOut("ERR " + err.Error())
	}
}

func isNotFound(err error) bool { return errors.Is(err, errcode.NotFound) }

// checkKey checks a key that is read: an empty one is no error there,
// since it cannot exist (the command answers as for a missing key).
func (s *Server) checkKey(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	return limitReply(s.opts.limits().CheckKey(key))
}

// checkWriteKey checks a key that is written.
func (s *Server) checkWriteKey(key []byte) string {
	return limitReply(s.opts.limits().CheckKey(key))
}

func (s *Server) checkValue(v []byte) string {
	return limitReply(s.opts.limits().CheckValue(v))
}

// limitReply words a refusal of the limits as Redis clients have always
// seen it from dkvs ("" for no error).
func limitReply(err error) string {
	if err == nil {
		return "" // before limits.As, which allocates: once per key checked
	}
	e, ok := limits.As(err)
	switch {
	case !ok:
		return "ERR " + err.Error()
	case !e.TooLarge():
		return "ERR empty key: dkvs keys are at least one byte long"
	}
	return fmt.Sprintf("ERR %s too large: %d bytes, the limit is %d", e.What, e.Size, e.Limit)
}

// parallelism bounds the backend calls one multi-key command makes at once.
const parallelism = 32

// forEach calls fn(i) for i in [0, n) with up to parallelism calls at
// once, and returns the first error.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, parallelism)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// uniqueKeys returns the distinct keys of keys, in first-seen order.
func uniqueKeys(keys [][]byte) [][]byte {
	seen := make(map[string]bool, len(keys))
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			out = append(out, k)
		}
	}
	return out
}

// --- key-value commands ---

func (s *Server) prepareGet(c *conn, args [][]byte) job {
	key := args[1]
	pr := c.protocol()
	if e := s.checkKey(key); e != "" {
		return errJob(e)
	}
	if len(key) == 0 {
		return replyJob(pr.appendNull(nil)) // cannot exist
	}
	// args[1:2:2] is the key alone without a slice of its own (capped:
	// an append copies); the reply functions capture nothing. Both were
	// allocations per GET on the pipelined path.
	reply := getReply2
	if pr == resp3 {
		reply = getReply3
	}
	return opsJob(args[1:2:2], nil, []Op{{Kind: OpGet, Key: key}}, reply)
}

// getReply2 and getReply3 are GET's replies in RESP2 and RESP3.
func getReply2(ops []Op) []byte { return getReply(resp2, ops) }
func getReply3(ops []Op) []byte { return getReply(resp3, ops) }

func getReply(pr protocol, ops []Op) []byte {
	switch err := ops[0].Err; {
	case isNotFound(err):
		return pr.appendNull(nil)
	case err != nil:
		return backendError(err)
	}
	return redcon.AppendBulk(nil, ops[0].Value)
}

func (s *Server) prepareSet(c *conn, args [][]byte) job {
	key, value := args[1], args[2]
	// Check every option's syntax first, as Redis does, then refuse the
	// first one: each needs something dkvs does not have.
	var refused string
	for i := 3; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		var why string
		switch opt {
		case "EX", "PX", "EXAT", "PXAT":
			if i+1 >= len(args) {
				return errJob(syntaxErr())
			}
			if _, err := strconv.ParseInt(string(args[i+1]), 10, 64); err != nil {
				return errJob(notInteger())
			}
			i++
			why = "dkvs keys do not expire"
		case "KEEPTTL":
			why = "dkvs keys do not expire"
		case "NX", "XX":
			why = "dkvs has no atomic compare-and-set"
		case "GET":
			why = "dkvs has no atomic get-and-set"
		default:
			return errJob(syntaxErr())
		}
		if refused == "" {
			refused = fmt.Sprintf("ERR SET option %s is not supported: %s", opt, why)
		}
	}
	if refused != "" {
		return errJob(refused)
	}
	if e := s.checkWriteKey(key); e != "" {
		return errJob(e)
	}
	if e := s.checkValue(value); e != "" {
		return errJob(e)
	}
	return opsJob(nil, args[1:2:2], []Op{{Kind: OpPut, Key: key, Value: value}}, func(ops []Op) []byte {
		if err := ops[0].Err; err != nil {
			return backendError(err)
		}
		return okOut()
	})
}

// prepareDel deletes each key and counts those that existed. The count is
// not atomic with the deletion: each key is read, then deleted, and a
// write by another client in between may be deleted without being
// counted (or counted and rewritten). dkvs has no atomic read-and-delete.
func (s *Server) prepareDel(c *conn, args [][]byte) job {
	var keys [][]byte
	for _, k := range uniqueKeys(args[1:]) {
		if e := s.checkKey(k); e != "" {
			return errJob(e)
		}
		if len(k) > 0 { // an empty key cannot exist: nothing to delete
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return replyJob(redcon.AppendInt(nil, 0))
	}
	return job{writes: keys, run: func(ctx context.Context) []byte {
		reads := make([]Op, len(keys))
		for i, k := range keys {
			reads[i] = Op{Kind: OpGet, Key: k}
		}
		s.batch(ctx, reads)
		if err := firstError(reads); err != nil {
			return backendError(err)
		}
		// Delete even the keys the read found absent: a quorum read can
		// miss a replica that still holds the key.
		dels := make([]Op, len(keys))
		for i, k := range keys {
			dels[i] = Op{Kind: OpDelete, Key: k}
		}
		s.batch(ctx, dels)
		for _, op := range dels {
			if op.Err != nil {
				return backendError(op.Err)
			}
		}
		existed := 0
		for _, op := range reads {
			if op.Err == nil {
				existed++
			}
		}
		return redcon.AppendInt(nil, int64(existed))
	}}
}

// getOps returns the reads of keys.
func getOps(keys [][]byte) []Op {
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = Op{Kind: OpGet, Key: k}
	}
	return ops
}

// found returns the values read by ops, by key; an absent key is not in
// the map.
func found(ops []Op) map[string][]byte {
	vals := make(map[string][]byte, len(ops))
	for _, op := range ops {
		if op.Err == nil {
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			vals[string(op.Key)] = v
		}
	}
	return vals
}

// readKeys checks the keys of EXISTS and MGET and returns the
// distinct non-empty ones (empty keys cannot exist).
func (s *Server) readKeys(args [][]byte) ([][]byte, string) {
	var keys [][]byte
	for _, k := range uniqueKeys(args) {
		if e := s.checkKey(k); e != "" {
			return nil, e
		}
		if len(k) > 0 {
			keys = append(keys, k)
		}
	}
	return keys, ""
}

// prepareExists counts the keys that exist; a key named twice counts
// twice, as in Redis.
func (s *Server) prepareExists(c *conn, args [][]byte) job {
	named := args[1:]
	keys, e := s.readKeys(named)
	if e != "" {
		return errJob(e)
	}
	return opsJob(keys, nil, getOps(keys), func(ops []Op) []byte {
		if err := firstError(ops); err != nil {
			return backendError(err)
		}
		vals := found(ops)
		n := 0
		for _, k := range named {
			if _, ok := vals[string(k)]; ok {
				n++
			}
		}
		return redcon.AppendInt(nil, int64(n))
	})
}

// prepareMGet fails as a whole if any read fails: answering nil for a key
// that could not be read would claim it does not exist.
func (s *Server) prepareMGet(c *conn, args [][]byte) job {
	named := args[1:]
	pr := c.protocol()
	keys, e := s.readKeys(named)
	if e != "" {
		return errJob(e)
	}
	return opsJob(keys, nil, getOps(keys), func(ops []Op) []byte {
		if err := firstError(ops); err != nil {
			return backendError(err)
		}
		vals := found(ops)
		out := redcon.AppendArray(nil, len(named))
		for _, k := range named {
			if v, ok := vals[string(k)]; ok {
				out = redcon.AppendBulk(out, v)
			} else {
				out = pr.appendNull(out)
			}
		}
		return out
	})
}

// prepareMSet writes the pairs as one batch. It is not atomic: if one
// write fails, the reply is that error and the others may have been
// written. A key named twice gets its last value, as in Redis.
func (s *Server) prepareMSet(c *conn, args [][]byte) job {
	if len(args)%2 != 1 {
		return errJob(wrongArgs("mset"))
	}
	last := make(map[string]int)
	var keys [][]byte
	for i := 1; i < len(args); i += 2 {
		if e := s.checkWriteKey(args[i]); e != "" {
			return errJob(e)
		}
		if e := s.checkValue(args[i+1]); e != "" {
			return errJob(e)
		}
		if _, ok := last[string(args[i])]; !ok {
			keys = append(keys, args[i])
		}
		last[string(args[i])] = i + 1
	}
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = Op{Kind: OpPut, Key: k, Value: args[last[string(k)]]}
	}
	return opsJob(nil, keys, ops, func(ops []Op) []byte {
		if err := firstError(ops); err != nil {
			return backendError(err)
		}
		return okOut()
	})
}

// --- keyspace commands ---

// maxScanCount caps SCAN's COUNT: it is a hint in Redis too, and one page
// must stay a reasonable reply.
const maxScanCount = 100000

func (s *Server) prepareScan(c *conn, args [][]byte) job {
	cur, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return errJob("ERR invalid cursor")
	}
	var start []byte
	if cur != 0 {
		var ok bool
		start, ok = s.cursors.get(cur)
		if !ok {
			return errJob(fmt.Sprintf("ERR invalid cursor: %d is unknown or expired (cursors are kept %s)", cur, s.opts.CursorTTL))
		}
	}
	count := 10
	var pattern []byte
	typeOK := true
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return errJob(syntaxErr())
		}
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			pattern = args[i+1]
		case "COUNT":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				return errJob(notInteger())
			}
			if n < 1 {
				return errJob(syntaxErr())
			}
			count = int(min(n, maxScanCount))
		case "TYPE":
			// Every dkvs value is a string.
			typeOK = strings.EqualFold(string(args[i+1]), "string")
		default:
			return errJob(syntaxErr())
		}
	}
	return job{readsAll: true, run: func(ctx context.Context) []byte {
		var keys [][]byte
		var next []byte
		seen := 0
		err := s.b().Scan(ctx, start, func(k, _ []byte) bool {
			if seen == count {
				next = append([]byte(nil), k...)
				return false
			}
			seen++
			if typeOK && (pattern == nil || globMatch(pattern, k)) {
				keys = append(keys, append([]byte(nil), k...))
			}
			return true
		})
		if err != nil {
			return backendError(err)
		}
		cursor := uint64(0)
		if next != nil {
			cursor = s.cursors.put(next)
		}
		out := redcon.AppendArray(nil, 2)
		out = redcon.AppendBulkString(out, strconv.FormatUint(cursor, 10))
		out = redcon.AppendArray(out, len(keys))
		for _, k := range keys {
			out = redcon.AppendBulk(out, k)
		}
		return out
	}}
}

func (s *Server) prepareKeys(c *conn, args [][]byte) job {
	pattern := args[1]
	return job{readsAll: true, run: func(ctx context.Context) []byte {
		var keys [][]byte
		err := s.b().Scan(ctx, nil, func(k, _ []byte) bool {
			if globMatch(pattern, k) {
				keys = append(keys, append([]byte(nil), k...))
			}
			return ctx.Err() == nil
		})
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return backendError(err)
		}
		out := redcon.AppendArray(nil, len(keys))
		for _, k := range keys {
			out = redcon.AppendBulk(out, k)
		}
		return out
	}}
}

func (s *Server) prepareDBSize(c *conn, args [][]byte) job {
	return job{readsAll: true, run: func(ctx context.Context) []byte {
		info, err := s.b().Info(ctx)
		if err != nil {
			return backendError(err)
		}
		return redcon.AppendInt(nil, info.Keys)
	}}
}

// infoSections lists INFO's sections in order; "default", "all" and
// "everything" (or no argument) mean all of them.
var infoSections = []string{"server", "clients", "ring", "keyspace"}

func (s *Server) prepareInfo(c *conn, args [][]byte) job {
	want := map[string]bool{}
	for _, a := range args[1:] {
		switch sec := lower(a); sec {
		case "default", "all", "everything":
			for _, n := range infoSections {
				want[n] = true
			}
		default:
			want[sec] = true
		}
	}
	if len(args) == 1 {
		for _, n := range infoSections {
			want[n] = true
		}
	}
	pr := c.protocol()
	return job{run: func(ctx context.Context) []byte {
		info, err := s.b().Info(ctx)
		if err != nil {
			return backendError(err)
		}
		return pr.appendText(nil, s.infoText(info, want))
	}}
}

func (s *Server) infoText(info Info, want map[string]bool) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	section := func(name string) bool {
		if !want[strings.ToLower(name)] {
			return false
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		return true
	}
	if section("Server") {
		started := info.Started
		if started.IsZero() {
			started = s.started
		}
		up := time.Since(started)
		line("redis_version", redisVersion)
		line("dkvs_version", info.Version)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("server_address", info.Addr)
		if addr := s.listenAddr(); addr != "" {
			line("resp_address", addr)
			if i := strings.LastIndexByte(addr, ':'); i >= 0 {
				line("tcp_port", addr[i+1:])
			}
		}
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
	}
	if section("Clients") {
		line("connected_clients", s.connCount())
	}
	if section("Ring") {
		line("ring_servers", len(info.Servers))
		for i, srv := range info.Servers {
			line("ring_server"+strconv.Itoa(i), srv)
		}
		line("replicas_n", info.N)
		line("write_quorum_w", info.W)
		line("read_quorum_r", info.R)
	}
	if section("Keyspace") {
		if info.Keys > 0 {
			line("db0", fmt.Sprintf("keys=%d,expires=0,avg_ttl=0", info.Keys))
		}
	}
	return b.String()
}

// --- connection and server commands (local) ---

func localPing(c *conn, args [][]byte) ([]byte, bool) {
	switch len(args) {
	case 1:
		return redcon.AppendString(nil, "PONG"), false
	case 2:
		return redcon.AppendBulk(nil, args[1]), false
	}
	return errOut(wrongArgs("ping")), false
}

func localEcho(c *conn, args [][]byte) ([]byte, bool) {
	return redcon.AppendBulk(nil, args[1]), false
}

func localQuit(c *conn, args [][]byte) ([]byte, bool) {
	return okOut(), true
}

func localSelect(c *conn, args [][]byte) ([]byte, bool) {
	n, err := strconv.ParseInt(string(args[1]), 10, 64)
	switch {
	case err != nil:
		return errOut(notInteger()), false
	case n != 0:
		return errOut("ERR DB index is out of range"), false
	}
	return okOut(), false
}

// localAuth answers AUTH token and AUTH user token. With users
// (Options.Access) a matching token makes the connection that user's;
// without, it answers as Redis with no password configured. A refused
// AUTH keeps the user the connection had.
func localAuth(c *conn, args [][]byte) ([]byte, bool) {
	switch len(args) {
	case 2:
		if c.srv.opts.Access == nil {
			return errOut("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), false
		}
		user, e := c.login(nil, args[1])
		if e != "" {
			return errOut(e), false
		}
		c.setUser(user)
		return okOut(), false
	case 3:
		user, e := c.login(args[1], args[2])
		if e != "" {
			return errOut(e), false
		}
		c.setUser(user)
		return okOut(), false
	}
	return errOut(syntaxErr()), false
}

// validClientName applies Redis's rule: printable ASCII without spaces.
func validClientName(name []byte) bool {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func (c *conn) setName(name []byte) {
	c.mu.Lock()
	c.name = string(name)
	c.mu.Unlock()
}

func localClient(c *conn, args [][]byte) ([]byte, bool) {
	sub := lower(args[1])
	switch sub {
	case "setname":
		if len(args) != 3 {
			return errOut(wrongArgs("client|setname")), false
		}
		if !validClientName(args[2]) {
			return errOut(errClientName), false
		}
		c.setName(args[2])
		return okOut(), false
	case "getname":
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			return c.protocol().appendNull(nil), false
		}
		return redcon.AppendBulkString(nil, name), false
	case "id":
		return redcon.AppendInt(nil, c.id), false
	case "info":
		return c.protocol().appendText(nil, c.clientInfo()), false
	case "list":
		return c.protocol().appendText(nil, c.srv.clientList()), false
	case "setinfo", "no-evict", "no-touch":
		// Harmless: library identity (go-redis sends it on connect) and
		// eviction hints dkvs has no use for.
		if len(args) < 3 {
			return errOut(wrongArgs("client|" + sub)), false
		}
		return okOut(), false
	}
	return errOut(unknownSub("client", string(args[1]))), false
}

func (s *Server) clientList() string {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var b strings.Builder
	for _, c := range conns {
		b.WriteString(c.clientInfo())
	}
	return b.String()
}

// configParams are the parameters CONFIG GET knows: what redis-benchmark
// and monitoring tools ask for at startup.
var configParams = [][2]string{
	{"appendonly", "no"},
	{"databases", "1"},
	{"save", ""},
}

func localConfig(c *conn, args [][]byte) ([]byte, bool) {
	if sub := lower(args[1]); sub != "get" {
		return errOut(unknownSub("config", string(args[1]))), false
	}
	if len(args) < 3 {
		return errOut(wrongArgs("config|get")), false
	}
	var out []byte
	n := 0
	for _, p := range configParams {
		for _, pat := range args[2:] {
			if globMatch(bytes.ToLower(pat), []byte(p[0])) {
				out = redcon.AppendBulkString(out, p[0])
				out = redcon.AppendBulkString(out, p[1])
				n++
				break
			}
		}
	}
	return append(c.protocol().appendMap(nil, n), out...), false
}
