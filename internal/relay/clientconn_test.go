package relay

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// chunkConn reads its data in the chunk sizes given.
type chunkConn struct {
	net.Conn
	r     *bytes.Reader
	sizes []byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, int(c.sizes[0])+1)
		c.sizes = c.sizes[1:]
	}
	return c.r.Read(p[:n])
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// framedReads reads in through a TURN-mode clientConn whose first message
// (already read by the demultiplexer) is first, with reads of bufSize and
// the stream delivering sizes-long chunks, and returns each Read's bytes.
func framedReads(first, in, sizes []byte, bufSize int) [][]byte {
	s := &Server{cfg: Config{IdleTimeout: time.Minute}}
	c := newClientConn(s, nil, netip.AddrPort{}, nil)
	c.started = true
	c.stream, c.pending = &chunkConn{r: bytes.NewReader(in), sizes: sizes}, first
	var out [][]byte
	buf := make([]byte, bufSize)
	for range 100000 {
		n, err := c.Read(buf)
		if n > 0 {
			out = append(out, bytes.Clone(buf[:n]))
		}
		if err != nil {
			break
		}
	}
	return out
}

// frameEnds lists where frames end in stream, by the same rules read
// independently: 20+length for STUN, 4+padded length for ChannelData.
func frameEnds(stream []byte) map[int]bool {
	ends := map[int]bool{}
	for pos := 0; pos+4 <= len(stream); {
		n := int(stream[pos+2])<<8 | int(stream[pos+3])
		size := 4
		switch stream[pos] >> 6 {
		case 0:
			size = 20 + n
		case 1:
			size = 4 + (n+3)/4*4
		}
		pos += size
		ends[pos] = true
	}
	return ends
}

func checkFramedReads(t *testing.T, first, in []byte, reads [][]byte) {
	t.Helper()
	stream := append(bytes.Clone(first), in...)
	if got := bytes.Join(reads, nil); !bytes.Equal(got, stream) {
		t.Fatalf("read %d bytes that differ from the %d-byte stream", len(got), len(stream))
	}
	ends := frameEnds(stream)
	pos := 0
	for _, r := range reads {
		for i := pos + 1; i < pos+len(r); i++ {
			if ends[i] {
				t.Fatalf("a Read of [%d,%d) crosses the frame end at %d", pos, pos+len(r), i)
			}
		}
		pos += len(r)
	}
}

func TestFramedReads(t *testing.T) {
	bind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodConnectionBind, stun.ClassRequest),
		stun.RawAttribute{Type: attrConnectionID, Value: []byte{1, 2, 3, 4}}, stun.Fingerprint).Raw
	refresh := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint).Raw
	channelData := []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}
	peerBytes := []byte("application data sent right behind ConnectionBind")
	tests := []struct {
		name         string
		first, in    []byte
		sizes        []byte
		bufSize      int
		wantFirstLen int // the first Read's length
	}{
		{"first message alone", bind, nil, nil, 1600, len(bind)},
		{"data pipelined after ConnectionBind in one segment", nil, append(bytes.Clone(bind), peerBytes...), nil, 1600, len(bind)},
		{"two requests in one segment", nil, append(bytes.Clone(refresh), refresh...), nil, 1600, len(refresh)},
		{"byte by byte", nil, append(bytes.Clone(refresh), channelData...), []byte{0}, 1600, 1},
		{"head split across segments", nil, append(bytes.Clone(refresh), refresh...), []byte{2, 2, 30}, 1600, 3},
		{"ChannelData then STUN", nil, append(bytes.Clone(channelData), refresh...), nil, 1600, len(channelData)},
		{"small buffer", bind, refresh, nil, 7, 7},
		{"neither STUN nor ChannelData", nil, []byte("\xff\xfe not a TURN frame at all"), nil, 1600, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := framedReads(tt.first, tt.in, tt.sizes, tt.bufSize)
			checkFramedReads(t, tt.first, tt.in, reads)
			if len(reads) == 0 || len(reads[0]) != tt.wantFirstLen {
				t.Fatalf("first Read returned %d bytes, want %d", len(reads[0]), tt.wantFirstLen)
			}
		})
	}
}

// FuzzFramedReads checks that the control-phase reader returns the stream
// unchanged and never returns bytes of two frames in one Read, whatever the
// bytes and however the stream is cut.
func FuzzFramedReads(f *testing.F) {
	refresh := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint).Raw
	f.Add(refresh, append(bytes.Clone(refresh), "data"...), []byte{3, 17}, uint16(1600))
	f.Add([]byte(nil), []byte{0x40, 0, 0, 1, 9, 0, 0, 0, 0, 1, 0, 0}, []byte{0}, uint16(5))
	f.Fuzz(func(t *testing.T, first, in, sizes []byte, bufSize uint16) {
		if bufSize == 0 {
			bufSize = 1
		}
		checkFramedReads(t, first, in, framedReads(first, in, sizes, int(bufSize)))
	})
}

func TestBindingTypeConstants(t *testing.T) {
	if bindingRequest != stun.BindingRequest.Value() || bindingIndication != stun.NewType(stun.MethodBinding, stun.ClassIndication).Value() {
		t.Fatal("Binding message type constants disagree with pion/stun")
	}
}
