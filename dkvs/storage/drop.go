package storage

import (
	"fmt"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// Drop deletes key's record if its version is still v, and reports
// whether it did: a server drops what it no longer owns after a move of
// the ring, once the current homes hold it, and a write of the key that
// arrived meanwhile must not be lost.
func (d *DB) Drop(key []byte, v kv.Version) (bool, error) {
	if err := d.enter(); err != nil {
		return false, err
	}
	defer d.leave()
	var dropped header
	deleted, err := d.deleteIf(spaceKey(spaceData, key), func(h header) bool {
		dropped = h
		return h.version == v
	})
	if err != nil {
		return false, fmt.Errorf("storage: drop %q: %w", key, err)
	}
	if deleted {
		d.account(dropped, -1)
	}
	return deleted, nil
}
