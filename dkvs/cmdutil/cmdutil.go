// Package cmdutil holds what dkvs-server and dkvs-client share on the
// command line: error reporting with the DKVS exit codes and logger setup.
package cmdutil

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// UsageError marks an error in the command line itself; it reports as
// errcode.InvalidCommand.
func UsageError(format string, args ...any) error {
	return errcode.Errorf(errcode.InvalidCommand, format, args...)
}

// Report prints "ERROR: <message>" on stderr and returns the exit status
// for err (0 for nil). The message is the code's text from the table,
// followed by the details when there are any.
func Report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	code := errcode.Of(err)
	fmt.Fprintf(stderr, "ERROR: %s\n", Message(err))
	return code.ExitStatus()
}

// Message formats err as "<code message>: <details>".
func Message(err error) string {
	code := errcode.Of(err)
	detail := errcode.Detail(err)
	if detail == code.Error() || detail == "" {
		return code.Error()
	}
	return code.Error() + ": " + detail
}

// NewLogger returns a slog logger writing to w in "text" or "json" at the
// named level (debug, info, warn, error).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, UsageError("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, UsageError("log format %q: want text or json", format)
}
