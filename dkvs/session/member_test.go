package session

import "testing"

func TestSetTLSMemberFollowsTheRing(t *testing.T) {
	ring := map[string]bool{}
	s := New("127.0.0.1:9")
	s.SetTLSMember([]string{"127.0.0.1:7001", "127.0.0.1:7002"}, func(a string) bool { return ring[a] })
	steps := []struct {
		name string
		ring []string
		want string
	}{
		{"not a member yet", nil, ""},
		{"joined", []string{"127.0.0.1:7002"}, "127.0.0.1:7002"},
		{"first claim wins", []string{"127.0.0.1:7001", "127.0.0.1:7002"}, "127.0.0.1:7001"},
		{"left", nil, ""},
	}
	for _, st := range steps {
		clear(ring)
		for _, a := range st.ring {
			ring[a] = true
		}
		if got := s.Member(); got != st.want {
			t.Errorf("%s: Member = %q, want %q", st.name, got, st.want)
		}
	}
	if !s.TLS() || s.User() != "" {
		t.Errorf("tls=%v user=%q", s.TLS(), s.User())
	}
}
