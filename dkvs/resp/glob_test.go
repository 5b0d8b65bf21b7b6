package resp

import "testing"

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"", "", true},
		{"", "a", false},
		{"a", "a", true},
		{"a", "A", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "hllo", true},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true}, // reversed range
		{"h[a-b]llo", "hcllo", false},
		{"h\\*llo", "h*llo", true},
		{"h\\*llo", "hallo", false},
		{"[\\]]", "]", true},
		{"[\\-]", "-", true},
		{"[abc", "b", true}, // unterminated class runs to the end
		{"[abc", "d", false},
		{"a\\", "a\\", true}, // trailing backslash is literal
		{"**a**b**", "xaxxbx", true},
		{"*a*b", "xaxxbx", false},
		{"key:*", "key:", true},
		{"\x00*", "\x00\xff", true},
		{"[\x00-\x01]", "\x01", true},
		{"*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, c := range cases {
		if got := globMatch([]byte(c.pattern), []byte(c.s)); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// refMatch is a direct recursive transcription of Redis's stringmatchlen
// (exponential on many stars, fine for short fuzz inputs).
func refMatch(p, s []byte) bool {
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if refMatch(p[1:], s) {
					return true
				}
				s = s[1:]
			}
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) >= 2 && p[0] == '\\' {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if len(p) == 0 {
					// Redis steps back so the loop's final advance
					// lands at the end.
					p = []byte{']'}
					break
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
					p = p[2:]
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}

// FuzzGlob checks the matcher against the reference on short inputs.
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{{"h*llo", "hello"}, {"[a-c]?\\*", "b1*"}, {"*[^x]", "ay"}, {"[ab", "b"}, {"a\\", "a\\"}} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, pattern, s []byte) {
		// The reference, like Redis's loop, never matches an empty string
		// (not even with "*"); dkvs keys are never empty, and here "*"
		// matches "" as in every other glob.
		if len(pattern) > 16 || len(s) > 24 || len(s) == 0 {
			return
		}
		if got, want := globMatch(pattern, s), refMatch(pattern, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}
