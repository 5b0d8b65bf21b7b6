package resp

// globMatch reports whether s matches the Redis glob pattern (the rules
// of Redis's stringmatchlen, byte-wise and case-sensitive):
//
//   - any run of bytes, including none
//     ?        any one byte
//     [abc]    one of the bytes listed; [^abc] one byte not listed;
//     [a-z] a range (bounds in either order); \ escapes in a class;
//     a class missing its ] runs to the end of the pattern
//     \x       the byte x itself; a trailing \ matches a backslash
//
// Since * is the only token that spans several bytes, backtracking to the
// most recent * is enough, and the match runs in O(len(s)*len(pattern))
// at worst rather than the exponential time of naive recursion.
func globMatch(pattern, s []byte) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				// Consecutive stars are one star.
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			default:
				if next, ok := matchOne(pattern, p, s[i]); ok {
					p = next
					i++
					continue
				}
			}
		}
		// Mismatch: let the last star swallow one more byte.
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches the single-byte token at pattern[p] (a literal, an
// escape or a class) against c, and returns the index after the token.
func matchOne(pattern []byte, p int, c byte) (int, bool) {
	switch pattern[p] {
	case '\\':
		if p+1 < len(pattern) {
			return p + 2, pattern[p+1] == c
		}
		return p + 1, c == '\\'
	case '[':
		return matchClass(pattern, p+1, c)
	default:
		return p + 1, pattern[p] == c
	}
}

// matchClass matches c against the class starting at pattern[p] (after
// its '[') and returns the index after the class's ']'.
func matchClass(pattern []byte, p int, c byte) (int, bool) {
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	match := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			if pattern[p+1] == c {
				match = true
			}
			p += 2
		case p+2 < len(pattern) && pattern[p+1] == '-':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			p += 3
		default:
			if pattern[p] == c {
				match = true
			}
			p++
		}
	}
	if p < len(pattern) {
		p++ // the ']'
	}
	return p, match != not
}
