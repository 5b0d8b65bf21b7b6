package auth

import (
	"log/slog"
	"net/http"
	"sync"
)

// HTTP guards the metrics and console port of a server with users: HTTP
// basic authentication with a user's name and token. Reading (GET, HEAD)
// needs the read or the admin right; anything else (the console's
// actions) the admin right. A refusal is logged once per client address
// (IP:PORT, so once per connection).
func HTTP(users *Store, log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &httpGuard{users: users, log: log, next: next, logged: map[string]bool{}}
	return g
}

type httpGuard struct {
	users *Store
	log   *slog.Logger
	next  http.Handler

	mu     sync.Mutex
	logged map[string]bool // client addresses whose refusal was logged
}

// maxLogged bounds the addresses remembered for logging once.
const maxLogged = 4096

func (g *httpGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, token, ok := r.BasicAuth()
	if !ok {
		g.refuse(w, r, http.StatusUnauthorized, "authentication required", "")
		return
	}
	u, err := g.users.Table().Verify(name, token)
	if err != nil {
		g.refuse(w, r, http.StatusUnauthorized, "invalid user or token", name)
		return
	}
	need := Admin
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		need = Read
	}
	if !u.Has(need) && !u.Has(Admin) {
		g.refuse(w, r, http.StatusForbidden, "permission denied: user has no "+need.String()+" right", name)
		return
	}
	g.next.ServeHTTP(w, r)
}

func (g *httpGuard) refuse(w http.ResponseWriter, r *http.Request, code int, why, user string) {
	host := r.RemoteAddr
	g.mu.Lock()
	first := !g.logged[host]
	if first {
		if len(g.logged) >= maxLogged {
			clear(g.logged)
		}
		g.logged[host] = true
	}
	g.mu.Unlock()
	if first {
		g.log.Warn("http: request refused (logged once per client address)", "remote", host, "user", user, "path", r.URL.Path, "why", why)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="dkvs", charset="UTF-8"`)
	}
	http.Error(w, why, code)
}
