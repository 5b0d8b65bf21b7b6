package coord

import (
	"fmt"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// sender puts the replica requests bound for one server that are ready at
// the same moment into one batch frame (wire.OpBatch), which the server
// applies as one storage batch with one fsync. Nothing waits for company:
// the first request for an idle server goes out at once, alone, as the
// plain request; the requests queued while it was being sent go out
// together right after, and so on. An operation of many keys (Batch)
// hands all its first-round requests over at once, so they travel as one
// frame per server.
type sender struct {
	tr       AsyncTransport
	maxBytes int

	peers sync.Map // address → *peerQueue
}

// outgoing is one request waiting for its frame.
type outgoing struct {
	req      wire.Frame
	deadline time.Time
	done     func(wire.Frame, error)
}

// peerQueue is what waits for one server.
type peerQueue struct {
	mu    sync.Mutex
	queue []outgoing
	busy  bool // a goroutine is sending the queue
	// plain: the server answered a batch as a bad request (a server that
	// does not know batches): every request goes alone from then on.
	plain bool
}

// LocalTransport is an AsyncTransport that answers some addresses in its
// own process (a server's transport answers its own address without the
// network). The sender does not combine lone requests for those: a batch
// there saves no message, and its items would run one after the other
// instead of side by side. A batch's first round (Batch) still goes to
// them as one frame, for its one storage batch.
type LocalTransport interface {
	AsyncTransport
	// Local reports whether requests to addr are answered in this process.
	Local(addr string) bool
}

func newSender(tr AsyncTransport, lim limits.Limits) *sender {
	return &sender{tr: tr, maxBytes: lim.BatchBytes()}
}

func (s *sender) peer(addr string) *peerQueue {
	if q, ok := s.peers.Load(addr); ok {
		return q.(*peerQueue)
	}
	q, _ := s.peers.LoadOrStore(addr, &peerQueue{})
	return q.(*peerQueue)
}

// send queues reqs for addr and, unless another goroutine is sending to
// addr already (it will take them), sends what is queued until nothing
// is.
func (s *sender) send(addr string, reqs ...outgoing) {
	if len(reqs) == 1 {
		if l, ok := s.tr.(LocalTransport); ok && l.Local(addr) {
			s.tr.Go(addr, reqs[0].req, reqs[0].deadline, reqs[0].done)
			return
		}
	}
	q := s.peer(addr)
	q.mu.Lock()
	q.queue = append(q.queue, reqs...)
	if q.busy {
		q.mu.Unlock()
		return
	}
	q.busy = true
	for len(q.queue) > 0 {
		n, size := 0, 0
		for n < len(q.queue) && n < limits.MaxBatchItems {
			sz := wire.BatchItemSize(len(q.queue[n].req.Body))
			if n > 0 && size+sz > s.maxBytes {
				break
			}
			size += sz
			n++
		}
		if n == len(q.queue) && n == 1 {
			// The common case: one request, nothing else queued.
			o := q.queue[0]
			q.queue[0] = outgoing{}
			q.queue = q.queue[:0]
			q.mu.Unlock()
			s.tr.Go(addr, o.req, o.deadline, o.done)
			q.mu.Lock()
			continue
		}
		batch := append([]outgoing(nil), q.queue[:n]...)
		rest := copy(q.queue, q.queue[n:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
		plain := q.plain
		q.mu.Unlock()
		s.flush(addr, q, batch, plain)
		q.mu.Lock()
	}
	q.busy = false
	q.mu.Unlock()
}

// flush sends batch as one frame, or each request alone when it holds one
// or the server takes no batches.
func (s *sender) flush(addr string, q *peerQueue, batch []outgoing, plain bool) {
	if len(batch) == 1 || plain {
		for _, o := range batch {
			s.tr.Go(addr, o.req, o.deadline, o.done)
		}
		return
	}
	items := make([]wire.BatchItem, len(batch))
	size := 0
	deadline := batch[0].deadline
	for i, o := range batch {
		items[i] = wire.BatchItem{Op: o.req.Op(), Flags: o.req.Flags, Body: o.req.Body}
		size += wire.BatchItemSize(len(o.req.Body))
		if o.deadline.After(deadline) {
			deadline = o.deadline
		}
	}
	f := wire.Frame{Kind: uint8(wire.OpBatch), Body: wire.AppendBatchRequest(make([]byte, 0, size+8), items)}
	s.tr.Go(addr, f, deadline, func(resp wire.Frame, err error) {
		if err != nil {
			for _, o := range batch {
				o.done(wire.Frame{}, err)
			}
			return
		}
		if st := resp.Status(); st == wire.StatusBadRequest || st == wire.StatusTooLarge {
			// Nothing of the batch was done: the server does not know
			// batches (it then gets every request alone from now on), or
			// the frame is above its limit (its limits are smaller than
			// this coordinator's). Each request goes again, alone.
			if st == wire.StatusBadRequest {
				q.mu.Lock()
				q.plain = true
				q.mu.Unlock()
			}
			for _, o := range batch {
				s.tr.Go(addr, o.req, o.deadline, o.done)
			}
			return
		}
		if resp.Status() != wire.StatusOK {
			for _, o := range batch {
				o.done(resp, nil) // the whole batch's status is each request's
			}
			return
		}
		answers, err := wire.DecodeBatchResponse(resp.Body, len(batch))
		if err != nil {
			err = fmt.Errorf("%s: bad batch reply: %w: %w", addr, err, errcode.Network)
		}
		for i, o := range batch {
			if err != nil {
				o.done(wire.Frame{}, err)
				continue
			}
			o.done(wire.Frame{Kind: o.req.Kind | wire.RespBit, Flags: answers[i].Flags, Body: answers[i].Body}, nil)
		}
	})
}
