package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/anycatch/anycatch/measure"
)

// On-disk record layout (little endian):
//
//	u32 length of body | u32 CRC-32C of body | body
//	body = i64 append time (unix ms) | 16-byte result id | JSON result
//
// A record is valid only if its whole body is present and the CRC matches;
// anything else at the end of a segment is a torn write and is truncated on
// open.
const (
	headerSize     = 8
	bodyFixedSize  = 8 + 16
	MaxRecordBytes = 4 << 20 // largest JSON result the spool accepts
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errShort    = errors.New("short record")
	errLength   = errors.New("record length out of range")
	errChecksum = errors.New("record checksum mismatch")
)

type record struct {
	timeMS int64
	id     measure.UUID
	data   []byte // aliases the decoded buffer
}

// appendRecord encodes r onto dst.
func appendRecord(dst []byte, r record) []byte {
	n := bodyFixedSize + len(r.data)
	start := len(dst)
	dst = append(dst, make([]byte, headerSize+bodyFixedSize)...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint64(dst[start+headerSize:], uint64(r.timeMS))
	copy(dst[start+headerSize+8:], r.id[:])
	dst = append(dst, r.data...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+headerSize:], castagnoli))
	return dst
}

// decodeRecord decodes the record at the start of b and returns it with the
// number of bytes it occupies. It never reads past b and never trusts the
// length field beyond [MaxRecordBytes].
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerSize {
		return record{}, 0, errShort
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < bodyFixedSize || n > bodyFixedSize+MaxRecordBytes {
		return record{}, 0, errLength
	}
	if len(b)-headerSize < n {
		return record{}, 0, errShort
	}
	body := b[headerSize : headerSize+n]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, errChecksum
	}
	var r record
	r.timeMS = int64(binary.LittleEndian.Uint64(body))
	copy(r.id[:], body[8:24])
	r.data = body[bodyFixedSize:]
	return r, headerSize + n, nil
}

// Ack files hold fixed-size entries: u64 record offset | u32 CRC-32C of it.
const ackSize = 12

func appendAck(dst []byte, off int64) []byte {
	var b [ackSize]byte
	binary.LittleEndian.PutUint64(b[:], uint64(off))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	return append(dst, b[:]...)
}

func decodeAck(b []byte) (int64, bool) {
	if len(b) < ackSize || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b)), true
}
