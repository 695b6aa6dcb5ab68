package rafthost

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// raft's wire: one type byte, then the request as a msgpack map; an
// InstallSnapshot request is followed by Size bytes of snapshot. The
// values are raft's own (net_transport.go), part of its wire format.
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// errForgedID: an RPC claimed to come from a server other than the one
// whose certificate the connection was made with.
var errForgedID = errors.New("raft RPC names another server than its certificate")

// idConn is an accepted raft connection whose peer proved, with its
// certificate, to be the node peer. hashicorp/raft trusts the server id
// in each RPC's header (votes, leadership transfer, who leads), so the
// connection hands the transport one whole RPC at a time, and only after
// checking that its header names peer: an RPC that claims another id
// closes the connection before raft sees any of it.
type idConn struct {
	net.Conn
	// identify runs once, before the first RPC: the TLS handshake, and
	// the node id the peer's certificate names.
	identify func() (string, error)
	peer     string
	rec      recorder
	dec      *codec.Decoder
	ready    []byte // checked bytes not yet read by the transport
	stream   int64  // snapshot bytes still to pass through unchecked
	err      error
}

func newIDConn(c net.Conn, identify func() (string, error)) *idConn {
	ic := &idConn{Conn: c, identify: identify, rec: recorder{br: bufio.NewReader(c)}}
	ic.dec = codec.NewDecoder(&ic.rec, &codec.MsgpackHandle{})
	return ic
}

func (c *idConn) Read(p []byte) (int, error) {
	for len(c.ready) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.stream > 0 {
			n, err := c.rec.br.Read(p[:min(int64(len(p)), c.stream)])
			c.stream -= int64(n)
			return n, err
		}
		if err := c.next(); err != nil {
			c.err = err
			if errors.Is(err, errForgedID) {
				c.Conn.Close()
			}
		}
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}

// next reads the next RPC and checks its header.
func (c *idConn) next() error {
	if c.identify != nil {
		id, err := c.identify()
		if err != nil {
			c.Conn.Close()
			return err
		}
		c.peer, c.identify = id, nil
	}
	c.rec.buf = c.rec.buf[:0]
	typ, err := c.rec.ReadByte()
	if err != nil {
		return err
	}
	switch typ {
	case rpcAppendEntries, rpcRequestVote, rpcInstallSnapshot, rpcTimeoutNow, rpcRequestPreVote:
	default:
		return fmt.Errorf("unknown raft rpc type %d", typ)
	}
	// Only the header (and a snapshot's size) is decoded; the rest of the
	// request is skipped over, and passed on as it came.
	// raft's requests embed RPCHeader, which the codec encodes inline.
	var req struct {
		raft.RPCHeader
		Size int64
	}
	if err := c.dec.Decode(&req); err != nil {
		return err
	}
	if id := string(req.RPCHeader.ID); id != c.peer {
		return fmt.Errorf("%w: %q over a connection of %q", errForgedID, id, c.peer)
	}
	if typ == rpcInstallSnapshot {
		if req.Size < 0 {
			return fmt.Errorf("snapshot size %d", req.Size)
		}
		c.stream = req.Size
	}
	c.ready = c.rec.buf
	c.rec.buf = nil // handed on: the next RPC records into a new buffer
	return nil
}

// recorder keeps every byte the decoder takes from br, so the checked RPC
// can be passed on exactly as it arrived.
type recorder struct {
	br  *bufio.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

func (r *recorder) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err == nil {
		r.buf = append(r.buf, b)
	}
	return b, err
}

func (r *recorder) UnreadByte() error {
	if err := r.br.UnreadByte(); err != nil {
		return err
	}
	r.buf = r.buf[:len(r.buf)-1]
	return nil
}

var _ io.ByteScanner = (*recorder)(nil)
