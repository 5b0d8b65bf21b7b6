package limits

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

func TestChecks(t *testing.T) {
	small := Limits{MaxKeySize: 4, MaxValueSize: 8}
	cases := []struct {
		name       string
		l          Limits
		key, value []byte
		err        string // the whole message, as every entry point has always given it
		tooLarge   bool
	}{
		{"fits", small, []byte("abcd"), []byte("12345678"), "", false},
		{"empty value", small, []byte("k"), nil, "", false},
		{"empty key", small, nil, []byte("v"), "empty key: Invalid argument (internal error)", false},
		{"empty key first", small, nil, bytes.Repeat([]byte("v"), 9), "empty key: Invalid argument (internal error)", false},
		{"key too large", small, []byte("abcde"), nil, "key of 5 bytes is above the limit of 4: Invalid argument (internal error)", true},
		{"key before value", small, []byte("abcde"), bytes.Repeat([]byte("v"), 9),
			"key of 5 bytes is above the limit of 4: Invalid argument (internal error)", true},
		{"value too large", small, []byte("k"), bytes.Repeat([]byte("v"), 9),
			"value of 9 bytes is above the limit of 8: Invalid argument (internal error)", true},
		{"zero value: defaults", Limits{}, bytes.Repeat([]byte("k"), DefaultMaxKeySize), nil, "", false},
		{"zero value: default key limit", Limits{}, bytes.Repeat([]byte("k"), DefaultMaxKeySize+1), nil,
			"key of 65537 bytes is above the limit of 65536: Invalid argument (internal error)", true},
		{"zero value: default value limit", Limits{}, []byte("k"), make([]byte, DefaultMaxValueSize+1),
			"value of 16777217 bytes is above the limit of 16777216: Invalid argument (internal error)", true},
	}
	for _, tc := range cases {
		err := tc.l.CheckRecord(tc.key, tc.value)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
			continue
		}
		if !errors.Is(err, errcode.InvalidArg) || errcode.Of(err) != errcode.InvalidArg {
			t.Errorf("%s: %v does not carry ERR_INVALID_ARGUMENT", tc.name, err)
		}
		e, ok := As(err)
		if !ok || e.TooLarge() != tc.tooLarge || errcode.Detail(err) != e.Detail() {
			t.Errorf("%s: As %+v %v, TooLarge want %v", tc.name, e, ok, tc.tooLarge)
		}
	}
	// CheckKey and CheckValue alone.
	if err := small.CheckKey([]byte("abcde")); err == nil {
		t.Error("CheckKey: long key accepted")
	}
	if err := small.CheckValue(nil); err != nil {
		t.Errorf("CheckValue(nil): %v", err)
	}
	if _, ok := As(errors.New("other")); ok {
		t.Error("As found a limits error in an unrelated one")
	}
}

func TestDefaults(t *testing.T) {
	if Default() != (Limits{MaxKeySize: 64 << 10, MaxValueSize: 16 << 20}) {
		t.Errorf("Default() = %+v", Default())
	}
	if got := (Limits{MaxKeySize: -1, MaxValueSize: 5}).OrDefault(); got != (Limits{MaxKeySize: DefaultMaxKeySize, MaxValueSize: 5}) {
		t.Errorf("OrDefault = %+v", got)
	}
}
