// Package errcode defines the DKVS error codes of cs202.md section 4.
//
// Every error that crosses a package boundary in dkvs wraps one of these
// codes, so that the command line can turn it into the documented exit
// status and the C library into the documented return value. A Code is
// itself an error: wrap it with fmt.Errorf("...: %w", errcode.NotFound) and
// match it with errors.Is. An error caused by another wraps both,
// fmt.Errorf("...: %w: %w", err, errcode.IO), so that errors.Is finds the
// cause as well; Of returns the code the outer error chose.
package errcode

import (
	"fmt"
	"strings"
)

// Code is a DKVS error code. Codes are negative; None is zero.
type Code int

// The codes of cs202.md section 4, with their values.
const (
	None           Code = 0
	IO             Code = -127
	Runtime        Code = -126
	OutOfMemory    Code = -125
	Network        Code = -124
	InvalidConfig  Code = -123
	InvalidCommand Code = -122
	InvalidArg     Code = -121
	Address        Code = -120
	NotFound       Code = -119
	Threading      Code = -118
)

var names = map[Code]string{
	None:           "ERR_NONE",
	IO:             "ERR_IO",
	Runtime:        "ERR_RUNTIME",
	OutOfMemory:    "ERR_OUT_OF_MEMORY",
	Network:        "ERR_NETWORK",
	InvalidConfig:  "ERR_INVALID_CONFIG",
	InvalidCommand: "ERR_INVALID_COMMAND",
	InvalidArg:     "ERR_INVALID_ARGUMENT",
	Address:        "ERR_ADDRESS",
	NotFound:       "ERR_NOT_FOUND",
	Threading:      "ERR_THREADING",
}

var messages = map[Code]string{
	None:           "",
	IO:             "I/O Error",
	Runtime:        "Runtime error",
	OutOfMemory:    "(re|m|c)alloc failed",
	Network:        "Network error",
	InvalidConfig:  "Invalid config",
	InvalidCommand: "Invalid command",
	InvalidArg:     "Invalid argument (internal error)",
	Address:        "Invalid address",
	NotFound:       "Not found",
	Threading:      "Threading error",
}

// All lists every code in table order.
var All = []Code{None, IO, Runtime, OutOfMemory, Network, InvalidConfig,
	InvalidCommand, InvalidArg, Address, NotFound, Threading}

// Error returns the code's message from the table, so that a Code can be
// returned and wrapped as an error.
func (c Code) Error() string {
	if m, ok := messages[c]; ok {
		return m
	}
	return fmt.Sprintf("unknown error %d", int(c))
}

// Name returns the symbolic name, e.g. "ERR_NOT_FOUND".
func (c Code) Name() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("ERR_%d", int(c))
}

// ExitStatus is the process exit status for the code: 256 + code, so that
// shells see the values of the table (ERR_NOT_FOUND exits 137).
func (c Code) ExitStatus() int {
	if c == None {
		return 0
	}
	return (256 + int(c)) & 0xff
}

// FromExitStatus returns the code whose ExitStatus is status, or Runtime
// for a status no code has.
func FromExitStatus(status int) Code {
	for _, c := range All {
		if c.ExitStatus() == status {
			return c
		}
	}
	return Runtime
}

// Of returns the code carried by err: None for nil, Runtime for an error
// that carries none, and otherwise the outermost code, the one nearest
// err in its tree of wrapped errors; among codes equally near, the last
// wrapped, as the code is wrapped after its cause.
//
// That is not what errors.As finds first: an error that wraps its cause
// as well as its code, fmt.Errorf("...: %w: %w", cause, errcode.IO), so
// that errors.Is finds the cause (context.DeadlineExceeded, an errno, a
// storage engine's error), holds the cause's own code, if any, one level
// deeper, and errors.As would find that one first. The code an error
// chose for itself wins. errors.Is(err, code) still matches every code in
// the tree, the cause's too.
func Of(err error) Code {
	if err == nil {
		return None
	}
	level := []error{err}
	for len(level) > 0 {
		var next []error
		code, found := None, false
		for _, e := range level {
			if c, ok := own(e); ok {
				code, found = c, true
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				if w := u.Unwrap(); w != nil {
					next = append(next, w)
				}
			case interface{ Unwrap() []error }:
				for _, w := range u.Unwrap() {
					if w != nil {
						next = append(next, w)
					}
				}
			}
		}
		if found {
			return code
		}
		level = next
	}
	return Runtime
}

// own returns the code e is, or says it is through an As method (as
// errors.As would ask it), without looking at the errors it wraps.
func own(e error) (Code, bool) {
	if c, ok := e.(Code); ok {
		return c, true
	}
	if a, ok := e.(interface{ As(any) bool }); ok {
		var c Code
		if a.As(&c) {
			return c, true
		}
	}
	return None, false
}

// Errorf formats a message and wraps code, so the result matches
// errors.Is(err, code) and prints as "<format>: <code message>".
func Errorf(code Code, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), code)
}

// Detail returns err's message without the code's message that ends it
// when err wraps a code ("empty key" for "empty key: Invalid argument
// (internal error)"): for a report that names the code itself, or an
// error reported under another code.
func Detail(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+Of(err).Error())
}
