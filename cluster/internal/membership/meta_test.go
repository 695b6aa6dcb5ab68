package membership

import (
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

// NodeMeta never exceeds memberlist's 512-byte limit (memberlist panics
// above it): the largest encoding CheckAddrs accepts fits, it round-trips,
// and every strict prefix fails to decode.
func TestNodeMeta_FitsMemberlistLimit(t *testing.T) {
	long := strings.Repeat("h", MaxAddrLen-6) + ":65535"
	m := NodeMeta{
		HasState: true, Leaving: true, Expect: 255,
		SubsVersion: 1<<64 - 1, SubsDigest: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		RaftAddr: long, QueueAddr: long, PubsubAddr: long,
	}
	b := m.Encode(nil)
	if len(b) != maxMetaSize || len(b) > memberlist.MetaMaxSize {
		t.Fatalf("largest meta is %d bytes (maxMetaSize %d, limit %d)", len(b), maxMetaSize, memberlist.MetaMaxSize)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	for i := range len(b) {
		if _, err := DecodeMeta(b[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(b))
		}
	}

}
