package relay

import (
	"bytes"
	"errors"
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

// bareServer is a Server with what a clientConn's reading and writing
// use, and no goroutines: for tests of one connection's framing.
func bareServer() *Server {
	cfg, err := baseConfig().withDefaults()
	if err != nil {
		panic(err)
	}
	cfg.IdleTimeout = time.Minute
	s := &Server{
		cfg: cfg, log: cfg.LoggerFactory.NewLogger("test"),
		ownIPs: map[netip.Addr]struct{}{}, relays: map[uint16]*relayListener{}, cids: map[uint32]cidEntry{},
		nonces: newNonceKeeper(cfg.NonceLifetime), ownAt: time.Now(),
		listeners: map[net.Listener]netip.AddrPort{},
	}
	s.auth = authenticator{realm: cfg.Realm, users: cfg.Users, keys: longTermKeys(cfg.Users, cfg.Realm), now: cfg.Now, log: s.log, refuse: func() {}}
	return s
}

// framedReads reads in through a TURN-mode clientConn whose first bytes
// (handed back by the STUN side) are first, with reads of bufSize and the
// stream delivering sizes-long chunks. It returns each Read's bytes, the
// error that ended the reads, and how much of in is still unread.
func framedReads(first, in, sizes []byte, bufSize int) (reads [][]byte, err error, unread int) {
	c := newClientConn(bareServer(), nil, netip.AddrPort{}, nil)
	c.started = true
	r := bytes.NewReader(in)
	c.stream, c.pending = &chunkConn{r: r, sizes: sizes}, first
	buf := make([]byte, bufSize)
	for range 100000 {
		var n int
		n, err = c.Read(buf)
		if n > 0 {
			reads = append(reads, bytes.Clone(buf[:n]))
		}
		if err != nil {
			break
		}
	}
	return reads, err, r.Len()
}

// wantFrames cuts stream into frames by the same rules, read
// independently: 20+length for STUN (a length that is a multiple of 4),
// 4+padded length for ChannelData; it stops at the first frame a reader
// with a bufSize buffer must refuse (garbage, too large) or that the
// stream does not complete, and says so.
func wantFrames(stream []byte, bufSize int) (frames [][]byte, refused bool) {
	if bufSize < 4 {
		return nil, true // not even a frame's head fits
	}
	pos := 0
	for pos+4 <= len(stream) {
		n := int(stream[pos+2])<<8 | int(stream[pos+3])
		var size int
		switch stream[pos] >> 6 {
		case 0:
			if n%4 != 0 {
				return frames, true
			}
			size = 20 + n
		case 1:
			size = 4 + (n+3)/4*4
		default:
			return frames, true
		}
		if size > maxTURNFrame || size > bufSize {
			return frames, true
		}
		if pos+size > len(stream) {
			return frames, false
		}
		frames = append(frames, stream[pos:pos+size])
		pos += size
	}
	return frames, false
}

func checkFramedReads(t *testing.T, first, in, sizes []byte, bufSize int) [][]byte {
	t.Helper()
	reads, err, unread := framedReads(first, in, sizes, bufSize)
	stream := append(bytes.Clone(first), in...)
	want, refused := wantFrames(stream, bufSize)
	if len(reads) != len(want) {
		t.Fatalf("%d Reads returned data, want %d frames (then %v)", len(reads), len(want), err)
	}
	for i := range want {
		if !bytes.Equal(reads[i], want[i]) {
			t.Fatalf("Read %d returned %x, want the frame %x", i, reads[i], want[i])
		}
	}
	switch {
	case refused && !errors.Is(err, errFrame):
		t.Fatalf("after the last whole frame: %v, want errFrame", err)
	case !refused && errors.Is(err, errFrame):
		t.Fatalf("refused a frame it can take: %v", err)
	}
	if !refused {
		// Nothing read past a frame's end: what is left unread is the
		// incomplete last frame's remainder at most.
		consumed := len(in) - unread
		if got := len(first) + consumed; got > len(stream) {
			t.Fatalf("consumed %d of a %d-byte stream", got, len(stream))
		}
	}
	return reads
}

func TestFramedReads(t *testing.T) {
	bind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodConnectionBind, stun.ClassRequest),
		stun.RawAttribute{Type: attrConnectionID, Value: []byte{1, 2, 3, 4}}, stun.Fingerprint).Raw
	refresh := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint).Raw
	channelData := []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}
	peerBytes := []byte("application data sent right behind ConnectionBind")
	tooLarge := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrSoftware, Value: make([]byte, 1600)}).Raw
	tests := []struct {
		name      string
		first, in []byte
		sizes     []byte
		bufSize   int
		frames    int
	}{
		{"handed back alone", bind, nil, nil, 1600, 1},
		{"data pipelined after ConnectionBind in one segment", nil, append(bytes.Clone(bind), peerBytes...), nil, 1600, 1},
		{"two requests in one segment", nil, append(bytes.Clone(refresh), refresh...), nil, 1600, 2},
		{"byte by byte", nil, append(bytes.Clone(refresh), channelData...), []byte{0}, 1600, 2},
		{"head split across segments", nil, append(bytes.Clone(refresh), refresh...), []byte{2, 2, 30}, 1600, 2},
		{"ChannelData then STUN", nil, append(bytes.Clone(channelData), refresh...), nil, 1600, 2},
		{"handed-back head, rest in the stream", bind[:4], bind[4:], nil, 1600, 1},
		{"more than pion can take", nil, append(bytes.Clone(refresh), tooLarge...), nil, 1600, 1},
		{"a buffer too small for the frame", refresh, nil, nil, 24, 0},
		{"neither STUN nor ChannelData", nil, []byte("\xff\xfe not a TURN frame at all"), nil, 1600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(checkFramedReads(t, tt.first, tt.in, tt.sizes, tt.bufSize)); got != tt.frames {
				t.Fatalf("%d frames, want %d", got, tt.frames)
			}
		})
	}
	// The frame after ConnectionBind is not read: the peer's bytes stay in
	// the stream for the relayed pair.
	_, _, unread := framedReads(nil, append(bytes.Clone(bind), peerBytes...), nil, 1600)
	if unread > len(peerBytes) {
		t.Fatalf("%d bytes unread, ConnectionBind is %d", unread, len(bind))
	}
}

// FuzzFramedReads checks that the control-phase reader returns the stream
// one whole frame per Read, refuses exactly the frames pion cannot take,
// and never reads past a frame's end, whatever the bytes and however the
// stream is cut. The frames also go through the relay's request handling
// (nonces, permissions), which must take any bytes.
func FuzzFramedReads(f *testing.F) {
	refresh := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint).Raw
	authed := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
		stun.NewUsername(testUser), stun.NewRealm(DefaultRealm), stun.NewNonce("icetcp1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
		stun.NewLongTermIntegrity(testUser, DefaultRealm, testPass), stun.Fingerprint).Raw
	f.Add(refresh, append(bytes.Clone(refresh), "data"...), []byte{3, 17}, uint16(1600))
	f.Add([]byte(nil), []byte{0x40, 0, 0, 1, 9, 0, 0, 0, 0, 1, 0, 0}, []byte{0}, uint16(5))
	f.Add(authed[:7], authed[7:], []byte{1}, uint16(1600))
	f.Fuzz(func(t *testing.T, first, in, sizes []byte, bufSize uint16) {
		if bufSize == 0 {
			bufSize = 1
		}
		checkFramedReads(t, first, in, sizes, int(bufSize))
	})
}

func TestBindingTypeConstants(t *testing.T) {
	if bindingRequest != stun.BindingRequest.Value() || bindingIndication != stun.NewType(stun.MethodBinding, stun.ClassIndication).Value() {
		t.Fatal("Binding message type constants disagree with pion/stun")
	}
}
