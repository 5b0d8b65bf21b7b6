package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// On-disk record layout (the value stored under a data key):
//
//	offset size
//	0      1    flags: bit 0 tombstone, bit 1 value is s2-compressed
//	1      1    N: the key's replication factor (0: this server alone)
//	2      20   version (kv.Version.AppendBinary)
//	22     4    CRC-32C (Castagnoli) of bytes 0..21 and of the stored value
//	26     ...  stored value (compressed when bit 1 is set)
const (
	flagTombstone  = 1 << 0
	flagCompressed = 1 << 1
	crcOffset      = 2 + kv.VersionSize
	headerSize     = crcOffset + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned when a stored record fails its checksum or cannot
// be decoded. It wraps errcode.IO.
var ErrCorrupt = fmt.Errorf("storage: corrupt record: %w", errcode.IO)

// encodeRecord returns the stored form of rec, compressing values of at
// least compressAbove bytes when that makes them smaller (0 disables).
func encodeRecord(rec kv.Record, compressAbove int) []byte {
	var flags uint8
	val := rec.Value
	if rec.Tombstone {
		flags |= flagTombstone
		val = nil
	} else if compressAbove > 0 && len(val) >= compressAbove {
		if c := s2.Encode(nil, val); len(c) < len(val)-len(val)/16 {
			flags |= flagCompressed
			val = c
		}
	}
	b := make([]byte, headerSize, headerSize+len(val))
	b[0] = flags
	b[1] = rec.N
	rec.Version.AppendBinary(b[2:2])
	crc := crc32.Update(crc32.Checksum(b[:crcOffset], castagnoli), castagnoli, val)
	binary.BigEndian.PutUint32(b[crcOffset:headerSize], crc)
	return append(b, val...)
}

// header is the decoded fixed part of a stored record.
type header struct {
	version   kv.Version
	tombstone bool
	n         uint8
	stored    int // bytes of the stored value
}

func decodeHeader(b []byte) (header, error) {
	if len(b) < headerSize || b[0]&^(flagTombstone|flagCompressed) != 0 {
		return header{}, ErrCorrupt
	}
	v, _ := kv.DecodeVersion(b[2:crcOffset])
	return header{version: v, tombstone: b[0]&flagTombstone != 0, n: b[1], stored: len(b) - headerSize}, nil
}

// record returns the header as a record without a value.
func (h header) record() kv.Record {
	return kv.Record{Version: h.version, Tombstone: h.tombstone, N: h.n}
}

// decodeRecord verifies the checksum and returns the record with a value
// that does not alias b.
func decodeRecord(b []byte) (kv.Record, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return kv.Record{}, err
	}
	crc := crc32.Update(crc32.Checksum(b[:crcOffset], castagnoli), castagnoli, b[headerSize:])
	if crc != binary.BigEndian.Uint32(b[crcOffset:headerSize]) {
		return kv.Record{}, ErrCorrupt
	}
	rec := h.record()
	stored := b[headerSize:]
	switch {
	case h.tombstone:
		if len(stored) != 0 {
			return kv.Record{}, ErrCorrupt
		}
	case b[0]&flagCompressed != 0:
		v, err := s2.Decode(nil, stored)
		if err != nil {
			return kv.Record{}, ErrCorrupt
		}
		rec.Value = v
	default:
		rec.Value = append(make([]byte, 0, len(stored)), stored...)
	}
	return rec, nil
}
