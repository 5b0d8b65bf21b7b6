package server

import "time"

// workers runs functions on goroutines that outlive them: a goroutine
// that has served one keeps its grown stack for the next, where a fresh
// goroutine per function would grow its stack anew each time (storage
// reads run deep: that growth was an eighth of the coordinating server's
// CPU under RESP load). A function waits for no other: when no worker is
// idle, a new one starts; a worker idle for longer than idle ends.
type workers struct {
	tasks chan func()
	idle  time.Duration
}

func newWorkers(idle time.Duration) *workers {
	return &workers{tasks: make(chan func()), idle: idle}
}

// run runs fn on an idle worker, or on a new one if none is idle.
func (w *workers) run(fn func()) {
	select {
	case w.tasks <- fn:
	default:
		go w.loop(fn)
	}
}

func (w *workers) loop(fn func()) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(w.idle)
		select {
		case fn = <-w.tasks:
		case <-t.C:
			return
		}
	}
}
