package main

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"
)

// TestStopOnSignal: the first SIGTERM ends the context; a clean stop that
// returns in time exits nothing; one that does not, or a second signal,
// exits at once with the forced status.
func TestStopOnSignal(t *testing.T) {
	cases := []struct {
		name   string
		limit  time.Duration
		second bool // a second signal
		stuck  bool // the clean stop never returns
		exits  bool
	}{
		{"clean stop in time", time.Hour, false, false, false},
		{"clean stop stuck", 20 * time.Millisecond, false, true, true},
		{"second signal", time.Hour, true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exited := make(chan int, 1)
			ctx, release := stopOnSignal(context.Background(), tc.limit, io.Discard, func(code int) { exited <- code })
			defer release()
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-ctx.Done()
			if tc.second {
				syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
			}
			if !tc.stuck {
				release()
				select {
				case code := <-exited:
					t.Fatalf("exited %d after a clean stop", code)
				default:
				}
				return
			}
			if code := <-exited; code != forcedStatus || code != 130 {
				t.Fatalf("exit status %d", code)
			}
		})
	}
}
