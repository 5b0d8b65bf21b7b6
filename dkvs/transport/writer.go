package transport

import (
	"bufio"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/wire"
)

// outFrame is a frame waiting to be written. Body is shared, never modified.
type outFrame struct {
	kind, flags uint8
	id          uint64
	body        []byte
}

// frameWriter writes frames to a connection from one goroutine. Senders
// append to a queue and return; the goroutine writes everything queued and
// flushes only when the queue is empty, so frames sent together leave in
// one system call (writes coalesced per flush).
type frameWriter struct {
	nc      net.Conn
	bw      *bufio.Writer
	timeout time.Duration
	mu      sync.Mutex
	queue   []outFrame
	unsent  atomic.Int64 // frames sent to the writer and not yet flushed
	wake    chan struct{}
	done    chan struct{} // closed by the owner to stop the loop
	onError func(error)
}

func newFrameWriter(nc net.Conn, timeout time.Duration, done chan struct{}, onError func(error)) *frameWriter {
	return &frameWriter{
		nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), timeout: timeout,
		wake: make(chan struct{}, 1), done: done, onError: onError,
	}
}

func (w *frameWriter) send(f outFrame) {
	w.unsent.Add(1)
	w.mu.Lock()
	w.queue = append(w.queue, f)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *frameWriter) loop() {
	var batch []outFrame
	var hdr [wire.HeaderSize]byte
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		if w.timeout > 0 {
			// A peer that stops reading (paused, wedged) must not block the
			// writer forever: its queue would grow without bound.
			w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		}
		yielded := false
		written := 0
		for {
			w.mu.Lock()
			batch, w.queue = w.queue, batch[:0]
			w.mu.Unlock()
			if len(batch) == 0 {
				if yielded {
					break
				}
				// Before the system call, let the goroutines that are ready
				// to run queue their frames too: under load this turns one
				// write per frame into one write per batch; when nothing
				// else is runnable it costs next to nothing.
				yielded = true
				runtime.Gosched()
				continue
			}
			for i := range batch {
				f := &batch[i]
				wire.AppendHeader(hdr[:0], f.kind, f.flags, f.id, len(f.body))
				w.bw.Write(hdr[:])
				if _, err := w.bw.Write(f.body); err != nil {
					w.onError(err)
					return
				}
				batch[i] = outFrame{}
			}
			written += len(batch)
		}
		if err := w.bw.Flush(); err != nil {
			w.onError(err)
			return
		}
		w.unsent.Add(int64(-written))
	}
}

// flushed reports whether every frame sent has been written out.
func (w *frameWriter) flushed() bool { return w.unsent.Load() == 0 }
