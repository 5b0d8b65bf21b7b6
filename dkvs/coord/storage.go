package coord

import (
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// A replica whose storage refuses writes (full, stalled or failed)
// answers a write at once with wire.StatusStorage, without applying it.
// The coordinator tells its failure detector, which then believes the
// replica not writable (a full one still takes deletions) until its pings
// report the storage ok again, and treats the refusal as it treats a
// replica that is down: the write goes to a fallback as a hint for it,
// and later writes skip it. Reads still go to it.
//
// A replica that found the key's record corrupt answers a get with
// wire.StatusCorrupt: it counts as a failed replica, and read repair sends
// it the newest version (the replica set the damaged record aside, so the
// repair applies whatever its version).

// writable reports whether server takes a write (a deletion, when
// deletion is set), as the failure detector believes.
func (c *Coordinator) writable(v *topology.View, server int, deletion bool) bool {
	return c.opts.Health == nil || c.opts.Health.Writable(v.Addrs()[server], deletion)
}

// storageReply notes what a reply says of the replica's storage: a
// refused write tells the detector; it returns whether the replica
// refused the write because of its storage.
func (c *Coordinator) storageReply(addr string, f wire.Frame) bool {
	if f.Status() != wire.StatusStorage {
		return false
	}
	if st, _, err := wire.DecodeRefusal(f.Body); err == nil && c.opts.Health != nil {
		c.opts.Health.SetStorage(addr, st)
	}
	return true
}

// storageStatusError is statusError for the storage statuses.
func storageStatusError(f wire.Frame) (error, bool) {
	switch f.Status() {
	case wire.StatusStorage:
		st, msg, err := wire.DecodeRefusal(f.Body)
		if err != nil || msg == "" {
			msg = "write refused: storage " + st.String()
		}
		return fmt.Errorf("%s: %w", msg, errcode.IO), true
	case wire.StatusCorrupt:
		msg, _ := wire.DecodeMessage(f.Body)
		return fmt.Errorf("corrupt record: %s: %w", msg, errcode.IO), true
	}
	return nil, false
}
