// Package console is dkvs-server's web console: a few pages served on
// the server's HTTP address (the one of /metrics) that draw the ring as a
// circle, place a key on it with each replica's version, and show every
// server's state and figures, refreshed live. An operator sees at a
// glance what dkvs-client status, dump-ring and the metrics tell in
// tables.
//
// The pages are plain HTML, CSS, JavaScript and SVG embedded in the
// binary: no build step, nothing fetched from elsewhere. They read one
// JSON endpoint per view (/api/ring, /api/servers, /api/key, /api/moves), which
// scripts may use too (docs/console.md). Everything the console knows
// comes from the server it runs in, through Source: a server that is
// down is shown down with what was last known of it, never as an error.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Source is what the console needs of the server it runs in.
// *server.Server implements it.
type Source interface {
	// Addr returns the server's own address (IP:PORT of servers.txt).
	Addr() string
	// Ring returns the ring of servers.txt.
	Ring() *ring.Ring
	// Stats returns the server's own stats, with its failure detector's
	// view of every peer (wire.PeerStats.Up).
	Stats() wire.Stats
	// PeerStats asks the server at addr for its stats.
	PeerStats(ctx context.Context, addr string) (wire.Stats, error)
	// ReplicaVersion reads key's record, without its value, on the server
	// at addr (this one included); found is false when it holds none.
	ReplicaVersion(ctx context.Context, addr string, key []byte) (rec kv.Record, found bool, err error)
	// View returns the ring as the server knows it now: its epoch and
	// the move under way.
	View() *topology.View
	// MoveHistory returns the last moves of the ring the server saw end,
	// newest first.
	MoveHistory() []topology.Past
}

// Options configure a Console.
type Options struct {
	// N is the number of home servers shown for a key when the request
	// does not say (default 3, at most the number of servers).
	N int
	// Timeout bounds each request the console sends to a server: a
	// stats request or a key's read (default 500ms).
	Timeout time.Duration
	// Logger receives failed requests at debug level; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultN       = 3
	DefaultTimeout = 500 * time.Millisecond
	// maxN bounds a key's home servers asked for.
	maxN = 255
)

//go:embed assets
var assetFS embed.FS

// Console serves the pages and their JSON endpoints.
type Console struct {
	src  Source
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	seen map[string]seenStats // the last stats each peer answered
	// gains are the receivers of the moves /api/moves shows, by move.
	gains map[uint64]cachedGains
}

// seenStats is a peer's stats and when they were fetched.
type seenStats struct {
	stats wire.Stats
	at    time.Time
}

// New returns the console of the server src.
func New(src Source, opts Options) *Console {
	if opts.N <= 0 {
		opts.N = DefaultN
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Console{src: src, opts: opts, log: log, seen: map[string]seenStats{}, gains: map[uint64]cachedGains{}}
}

// Handler serves the console: the page at /, its files under /assets/ and
// the JSON endpoints under /api/. Every other path goes to next (the
// metrics, say); nil answers them 404.
func (c *Console) Handler(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	static, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(static))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		w.Header().Set("Content-Type", "image/svg+xml")
		http.ServeFileFS(w, r, static, "favicon.svg")
	})
	mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no listings
			return
		}
		pageHeaders(w)
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/ring", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Ring())
	})
	mux.HandleFunc("GET /api/servers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Servers(r.Context()))
	})
	mux.HandleFunc("GET /api/moves", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Moves(r.Context()))
	})
	mux.HandleFunc("GET /api/key", c.serveKey)
	mux.Handle("/", next)
	return mux
}

// pageHeaders forbid the pages to load anything from elsewhere, or to be
// framed.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
}

func (c *Console) serveKey(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("k") || q.Get("k") == "" {
		writeJSON(w, http.StatusBadRequest, apiError{"want a key: /api/key?k=KEY"})
		return
	}
	n := c.opts.N
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxN {
			writeJSON(w, http.StatusBadRequest, apiError{"n must be a number from 1 to " + strconv.Itoa(maxN)})
			return
		}
		n = v
	}
	writeJSON(w, http.StatusOK, c.Key(r.Context(), []byte(q.Get("k")), n))
}

// apiError is the body of a refused request.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v) // a client gone away is no one's error
}
