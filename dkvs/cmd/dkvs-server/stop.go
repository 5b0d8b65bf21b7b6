package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// stopLimit bounds a clean stop: past it, the process exits anyway. Each
// step of the stop is bounded (storage.Options.CloseTimeout, the server's
// shutdown steps), and this bounds them all, whatever the store's state.
const stopLimit = 30 * time.Second

// forcedStatus is the exit status of a stop that did not finish cleanly
// (ERR_RUNTIME): the data acknowledged is on disk, as after a crash.
var forcedStatus = errcode.Runtime.ExitStatus()

// stopOnSignal returns a context that ends on the first SIGINT or
// SIGTERM; from then on, if the clean stop has not returned (release not
// called) within limit, or on a second signal, exit ends the process with
// forcedStatus. release ends the watch.
func stopOnSignal(parent context.Context, limit time.Duration, stderr io.Writer, exit func(int)) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(parent)
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigc:
		case <-parent.Done():
		case <-done:
			return
		}
		cancel()
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-done:
		case sig := <-sigc:
			fmt.Fprintf(stderr, "dkvs-server: %v again during the clean stop: exiting now (status %d)\n", sig, forcedStatus)
			exit(forcedStatus)
		case <-t.C:
			fmt.Fprintf(stderr, "dkvs-server: the clean stop did not finish within %v: exiting now (status %d)\n", limit, forcedStatus)
			exit(forcedStatus)
		}
	}()
	var once bool
	return ctx, func() {
		if !once {
			once = true
			signal.Stop(sigc)
			close(done)
			cancel()
		}
	}
}
