package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHTTP(t *testing.T) {
	tb := mustParse(t, strings.Join([]string{
		"reader read app/ " + hashOf("r"),
		"writer write * " + hashOf("w"),
		"admin admin - " + hashOf("a"),
	}, "\n"))
	h := HTTP(NewStore(tb), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	tests := []struct {
		name, method, user, token string
		want                      int
	}{
		{"no credentials", "GET", "", "", http.StatusUnauthorized},
		{"wrong token", "GET", "reader", "w", http.StatusUnauthorized},
		{"unknown user", "GET", "nobody", "r", http.StatusUnauthorized},
		{"reader reads", "GET", "reader", "r", http.StatusTeapot},
		{"reader acts", "POST", "reader", "r", http.StatusForbidden},
		{"writer reads", "GET", "writer", "w", http.StatusForbidden},
		{"admin reads", "GET", "admin", "a", http.StatusTeapot},
		{"admin acts", "POST", "admin", "a", http.StatusTeapot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/metrics", nil)
			if tc.user != "" {
				r.SetBasicAuth(tc.user, tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s %s as %q: %d, want %d", tc.method, r.URL.Path, tc.user, w.Code, tc.want)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}
