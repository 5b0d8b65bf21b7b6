package dkvs

import (
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/scan"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Dump streams every live pair of the ring in key order, the newest
// version of each key, by merging the scans of all servers page by page:
// memory stays bounded by one page per server. Servers that do not answer
// are skipped; Dump then returns an errcode.Network error naming them,
// after streaming everything the others hold.
func (c *Client) Dump(ctx context.Context, fn func(key, value []byte) error) error {
	// Every server that may hold keys: during a move, those of both rings.
	addrs := c.coord.View().Addrs()
	if len(addrs) == 0 {
		return fmt.Errorf("dump needs the ring's servers (a client made with Via alone does not know them): %w", errcode.InvalidConfig)
	}
	page := func(ctx context.Context, addr string, start []byte) (wire.ScanResponse, error) {
		return c.scanPage(ctx, addr, start, true)
	}
	if err := scan.Merge(ctx, addrs, nil, page, fn); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}
