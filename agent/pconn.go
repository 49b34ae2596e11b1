package agent

import (
	"errors"
	"fmt"

	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
)

// errDataBeforeAuth closes a connection whose peer sent application data
// before any check on it was authenticated.
var errDataBeforeAuth = errors.New("agent: application data before an authenticated check")

// inboxFrames bounds the application frames buffered per connection (up to
// 4 MiB); beyond it the reader stops reading and TCP flow control pushes
// back on the peer.
const inboxFrames = 64

var framePool = sync.Pool{New: func() any { b := make([]byte, framing.MaxFrameSize); return &b }}

// pconn is one TCP connection used for checks and, if its pair is selected,
// for application data. Its reader goroutine authenticates STUN messages
// (it needs only the passwords, not agent state), forwards them to the agent
// loop and queues application frames for Conn.Read.
type pconn struct {
	id      uint64
	c       net.Conn
	fr      *framing.Reader
	fw      *framing.Writer
	inbound bool
	local   candidate.Candidate // the local candidate whose socket this is
	remote  netip.AddrPort

	authenticated atomic.Bool
	writeMu       sync.Mutex // guards writeClosed and stunPending
	writeCond     *sync.Cond
	writeClosed   bool         // CloseWrite was called: no STUN may be written any more
	stunPending   int          // async STUN writes queued; CloseWrite waits for them
	inbox         chan *[]byte // application frames; closed by the reader when it exits
	done          chan struct{}
	closeOnce     sync.Once
	err           error // why the connection was closed; written before done is closed
	readErr       error // why the reader stopped; written before inbox is closed
	bytesIn       atomic.Uint64
	bytesOut      atomic.Uint64

	onAuth func() // called once when the first check is authenticated

	pair *pair // owned by the agent loop
}

func newPConn(id uint64, c net.Conn, fr *framing.Reader, inbound bool, local candidate.Candidate) *pconn {
	if fr == nil {
		fr = framing.NewReader(c)
	}
	remote := netip.AddrPort{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort()
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	}
	pc := &pconn{
		id: id, c: c, fr: fr, fw: framing.NewWriter(c), inbound: inbound, local: local,
		remote: remote,
		inbox:  make(chan *[]byte, inboxFrames), done: make(chan struct{}),
	}
	pc.writeCond = sync.NewCond(&pc.writeMu)
	return pc
}

// startSTUNWrite reserves an asynchronous STUN write; false once the
// sending side is closed.
func (pc *pconn) startSTUNWrite() bool {
	pc.writeMu.Lock()
	defer pc.writeMu.Unlock()
	if pc.writeClosed {
		return false
	}
	pc.stunPending++
	return true
}

func (pc *pconn) endSTUNWrite() {
	pc.writeMu.Lock()
	defer pc.writeMu.Unlock()
	pc.stunPending--
	pc.writeCond.Broadcast()
}

// closeWrite waits for queued STUN writes (a nomination response must not
// be overtaken by our FIN), then shuts down the sending side.
func (pc *pconn) closeWrite() error {
	pc.writeMu.Lock()
	pc.writeClosed = true
	for pc.stunPending > 0 {
		pc.writeCond.Wait()
	}
	pc.writeMu.Unlock()
	tc, ok := pc.c.(interface{ CloseWrite() error })
	if !ok {
		return errors.ErrUnsupported
	}
	return tc.CloseWrite()
}

// close closes the connection once and records why.
func (pc *pconn) close(err error) {
	pc.closeOnce.Do(func() {
		if err == nil {
			err = net.ErrClosed
		}
		pc.err = err
		close(pc.done)
		_ = pc.c.Close()
	})
}

func (pc *pconn) closed() bool {
	select {
	case <-pc.done:
		return true
	default:
		return false
	}
}

// closeErr is the reason given by close; valid once done is closed.
func (pc *pconn) closeErr() error {
	<-pc.done
	return pc.err
}

// writeSTUN sends one framed STUN message. It may block behind application
// writes, so the agent loop calls it on a goroutine of its own.
func (pc *pconn) writeSTUN(m *stun.Message) error {
	if err := pc.fw.WriteFrame(m.Raw); err != nil {
		return fmt.Errorf("agent: write STUN to %s: %w", pc.remote, err)
	}
	return nil
}

// readerConfig is what the reader needs from the agent: immutable
// credentials, the remote password once known, and the loop's inbox.
type readerConfig struct {
	localUfrag, localPwd string
	remotePwd            *atomic.Pointer[string]
	firstTimeout         time.Duration
	first                []byte // a frame already read (by a Mux)
	onSTUN               func(pc *pconn, m *stun.Message)
	onEnd                func(pc *pconn, err error)
	log                  func(format string, args ...any)
}

// readLoop runs until the connection fails or closes. STUN messages that
// fail authentication are answered with 401 and, before the connection is
// authenticated, close it.
func (pc *pconn) readLoop(rc readerConfig) {
	var err error
	defer func() {
		pc.readErr = err
		close(pc.inbox)
		rc.onEnd(pc, err)
	}()
	if pc.inbound && rc.first == nil {
		_ = pc.c.SetReadDeadline(time.Now().Add(rc.firstTimeout))
	}
	first := rc.first
	for {
		var frame []byte
		if first != nil {
			frame, first = first, nil
		} else if frame, err = pc.fr.Next(); err != nil {
			if pc.closed() {
				err = pc.closeErr()
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() && !pc.authenticated.Load() {
				err = fmt.Errorf("agent: no authenticated check from %s within %v: %w", pc.remote, rc.firstTimeout, err)
			}
			return
		}
		if framing.IsSTUN(frame) {
			m, derr := decodeSTUN(frame)
			if derr == nil {
				if err = pc.handleSTUN(rc, m); err != nil {
					pc.close(err)
					return
				}
				continue
			}
			if !pc.authenticated.Load() {
				err = derr
				pc.close(err)
				return
			}
			// After authentication a frame that merely looks like STUN
			// but has no valid FINGERPRINT is application data.
		}
		if !pc.authenticated.Load() {
			err = errDataBeforeAuth
			pc.close(err)
			return
		}
		bp := framePool.Get().(*[]byte)
		*bp = append((*bp)[:0], frame...)
		pc.bytesIn.Add(uint64(len(frame)))
		select {
		case pc.inbox <- bp:
		case <-pc.done:
			err = pc.closeErr()
			return
		}
	}
}

// handleSTUN authenticates m and hands it to the agent. A non-nil error
// closes the connection.
func (pc *pconn) handleSTUN(rc readerConfig, m *stun.Message) error {
	switch m.Type.Class {
	case stun.ClassRequest:
		if err := authRequest(m, rc.localUfrag, rc.localPwd); err != nil {
			code := stun.CodeUnauthorized
			if !errors.Is(err, ErrUnauthenticated) {
				code = stun.CodeBadRequest
			}
			if resp, berr := buildError(m, code, ""); berr == nil {
				_ = pc.writeSTUN(resp)
			}
			rc.log("rejected check from %s: %v", pc.remote, err)
			if pc.authenticated.Load() {
				return nil // a bad message on a good connection is dropped, not fatal
			}
			return err
		}
		pc.markAuthenticated()
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		pwd := rc.remotePwd.Load()
		if pwd == nil {
			return nil // a response to nothing we sent
		}
		if err := stun.NewShortTermIntegrity(*pwd).Check(m); err != nil {
			if m.Type.Class == stun.ClassErrorResponse && errorCode(m) == stun.CodeUnauthorized {
				// 401 carries no integrity: the peer could not verify us.
				rc.onSTUN(pc, m)
				return nil
			}
			return fmt.Errorf("%w: response from %s: %v", ErrUnauthenticated, pc.remote, err)
		}
		pc.markAuthenticated()
	default:
		return nil // indications (keepalives) need no answer
	}
	rc.onSTUN(pc, m)
	return nil
}

func (pc *pconn) markAuthenticated() {
	if !pc.authenticated.CompareAndSwap(false, true) {
		return
	}
	if pc.inbound {
		_ = pc.c.SetReadDeadline(time.Time{})
	}
	if pc.onAuth != nil {
		pc.onAuth()
	}
}

// drain returns buffered frames to the pool after the connection lost.
func (pc *pconn) drain() {
	for {
		select {
		case bp, ok := <-pc.inbox:
			if !ok {
				return
			}
			framePool.Put(bp)
		default:
			return
		}
	}
}
