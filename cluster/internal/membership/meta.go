package membership

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what a node tells the others about itself through memberlist's
// NodeMeta. It stays far below memberlist.MetaMaxSize (512 bytes), above
// which memberlist panics: addresses are capped at MaxAddrLen bytes each and
// everything else has a fixed size, so the largest encoding is
// maxMetaSize (checked by TestNodeMeta_FitsMemberlistLimit).
//
// Wire format, version 1:
//
//	byte     format version (metaVersion)
//	byte     flags: metaHasState, metaLeaving
//	byte     bootstrap expect
//	8 bytes  pubsub subscriber-set version (big endian)
//	8 bytes  pubsub subscriber-set digest (FNV-64a of topics and counts)
//	3 × (byte length + bytes)  raft, queue and pubsub addresses
//
// A decoder accepts a newer version as long as the fields it knows come
// first: new fields are appended, never inserted.
type NodeMeta struct {
	// HasState is set once the node has raft state: it bootstrapped, was
	// added by a leader, or started on a data directory with a log.
	HasState bool
	// Leaving is set by Leave before memberlist's own leave message, so
	// that peers can tell a graceful leave from a failure (memberlist does
	// not expose the difference).
	Leaving bool
	// Expect is the node's BootstrapExpect.
	Expect int
	// SubsVersion and SubsDigest describe the node's pubsub subscriber set
	// (package subscriberset): a peer that sees a version above the one it knows fetches
	// the set. Zero from nodes that do not gossip subscriber sets.
	SubsVersion uint64
	SubsDigest  [8]byte
	RaftAddr    string
	QueueAddr   string
	PubsubAddr  string
}

const (
	metaVersion = 1

	metaHasState = 1 << 0
	metaLeaving  = 1 << 1

	// MaxAddrLen bounds each address: a 253-byte DNS name does not fit
	// three times, and nothing real needs more than an IPv6 literal with a
	// port (47 bytes) or a reasonable host name.
	MaxAddrLen = 128
	// metaFixed is the size of everything but the addresses.
	metaFixed = 1 + 1 + 1 + 8 + 8
	// maxMetaSize is the largest encoding: 19 + 3 × 129 = 406 bytes.
	maxMetaSize = metaFixed + 3*(1+MaxAddrLen)
)

// The largest encoding must fit memberlist's limit; this fails to compile
// otherwise.
var _ [memberlist.MetaMaxSize - maxMetaSize]struct{}

var errBadMeta = errors.New("bad node meta")

// CheckAddrs reports an address too long to be gossiped.
func CheckAddrs(addrs map[string]string) error {
	for name, a := range addrs {
		if len(a) > MaxAddrLen {
			return fmt.Errorf("%s %q is longer than %d bytes", name, a, MaxAddrLen)
		}
	}
	return nil
}

// Encode appends the wire form of m to b. Addresses must already be within
// MaxAddrLen (CheckAddrs).
func (m *NodeMeta) Encode(b []byte) []byte {
	var flags byte
	if m.HasState {
		flags |= metaHasState
	}
	if m.Leaving {
		flags |= metaLeaving
	}
	b = append(b, metaVersion, flags, byte(m.Expect))
	b = binary.BigEndian.AppendUint64(b, m.SubsVersion)
	b = append(b, m.SubsDigest[:]...)
	for _, s := range []string{m.RaftAddr, m.QueueAddr, m.PubsubAddr} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeMeta parses a peer's NodeMeta.
func DecodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	if len(b) < metaFixed {
		return m, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	if b[0] < metaVersion {
		return m, fmt.Errorf("%w: version %d", errBadMeta, b[0])
	}
	m.HasState = b[1]&metaHasState != 0
	m.Leaving = b[1]&metaLeaving != 0
	m.Expect = int(b[2])
	m.SubsVersion = binary.BigEndian.Uint64(b[3:11])
	copy(m.SubsDigest[:], b[11:19])
	rest := b[metaFixed:]
	for _, dst := range []*string{&m.RaftAddr, &m.QueueAddr, &m.PubsubAddr} {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return m, fmt.Errorf("%w: truncated address", errBadMeta)
		}
		n := int(rest[0])
		*dst = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	return m, nil
}
