package secure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// Record layer. After the handshake every byte on the transport is a record:
//
//	length (2 bytes, big endian) || AEAD(type (1 byte) || payload)
//
// The length counts the sealed body, so a whole record is at most
// MaxRecordSize bytes and fits one RFC 4571 frame of the ICE transport.
// The type is inside the encryption: an observer cannot tell data from the
// end of the stream, and nobody without the keys can forge an end. Nonces
// are implicit counters (Noise CipherState), so a dropped, replayed or
// reordered record fails authentication.
const (
	// MaxRecordSize bounds a record on the wire, header included.
	MaxRecordSize = 65535
	// MaxPayload is the most application data one record carries.
	MaxPayload = MaxRecordSize - headerLen - typeLen - tagLen

	headerLen = 2
	typeLen   = 1
	tagLen    = 16 // ChaCha20-Poly1305 and AES-GCM
	minBody   = typeLen + tagLen
	maxBody   = MaxRecordSize - headerLen
	endLen    = 8 // an end-of-stream record carries the byte count sent
)

// recordType is the first plaintext byte of a record.
type recordType byte

const (
	recData  recordType = 0 // application data
	recEnd   recordType = 1 // deliberate end of the sender's stream; payload: bytes sent, uint64
	recReady recordType = 2 // the initiator's key confirmation, its first record
)

func (t recordType) String() string {
	switch t {
	case recData:
		return "data"
	case recEnd:
		return "end-of-stream"
	case recReady:
		return "ready"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// sealRecord writes a whole record for typ and payload into buf (reused
// across calls, grown as needed) and returns it. The payload is copied once
// and sealed in place.
func sealRecord(buf []byte, cs *noise.CipherState, typ recordType, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("secure: record payload of %d bytes above %d", len(payload), MaxPayload)
	}
	need := headerLen + typeLen + len(payload) + tagLen
	if cap(buf) < need {
		buf = make([]byte, 0, max(need, 4096))
	}
	buf = buf[:headerLen+typeLen+len(payload)]
	buf[headerLen] = byte(typ)
	copy(buf[headerLen+typeLen:], payload)
	out, err := cs.Encrypt(buf[:headerLen], nil, buf[headerLen:])
	if err != nil {
		return nil, fmt.Errorf("secure: seal record: %w", err)
	}
	binary.BigEndian.PutUint16(out, uint16(len(out)-headerLen))
	return out, nil
}

// bodyLen validates a record header and returns the sealed body's length.
func bodyLen(header []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(header))
	if n < minBody || n > maxBody {
		return 0, fmt.Errorf("%w: record body of %d bytes, want %d..%d", ErrRecord, n, minBody, maxBody)
	}
	return n, nil
}

// openRecord authenticates and decrypts body in place. seq numbers the
// record for the error message.
func openRecord(cs *noise.CipherState, body []byte, seq uint64) (recordType, []byte, error) {
	if len(body) < minBody || len(body) > maxBody {
		return 0, nil, fmt.Errorf("%w: record %d has %d bytes, want %d..%d", ErrRecord, seq, len(body), minBody, maxBody)
	}
	plain, err := cs.Decrypt(body[:0], nil, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: record %d failed authentication (the stream was altered or corrupted): %w", ErrRecord, seq, err)
	}
	return recordType(plain[0]), plain[typeLen:], nil
}

// endPayload encodes the byte count an end-of-stream record carries.
func endPayload(sent uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, endLen), sent)
}

// checkEnd verifies an end-of-stream payload against what arrived. A
// mismatch cannot happen without the keys (records are counted by their
// nonces); checking costs nothing and catches our own bugs.
func checkEnd(payload []byte, received uint64) error {
	if len(payload) != endLen {
		return fmt.Errorf("%w: end-of-stream record with %d bytes of payload, want %d", ErrRecord, len(payload), endLen)
	}
	if sent := binary.BigEndian.Uint64(payload); sent != received {
		return fmt.Errorf("%w: peer says it sent %d bytes, %d arrived", ErrRecord, sent, received)
	}
	return nil
}

// Handshake framing: every handshake message is
//
//	magic (16 bytes) || length (2 bytes, big endian) || Noise message
//
// The magic tells a peer that speaks something else (a plain icetcp connect,
// a stray client) from one that holds another secret, so each gets a clear
// error; it is also the Noise prologue.
const (
	handshakeMagic  = "icetcp-secure/1\n"
	maxHandshakeMsg = 256 // our messages are 48 bytes; more is not us
)

// appendHandshake frames a Noise handshake message.
func appendHandshake(dst, msg []byte) []byte {
	dst = append(dst, handshakeMagic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

// readHandshake reads one framed handshake message from r.
func readHandshake(r io.Reader) ([]byte, error) {
	var head [len(handshakeMagic) + 2]byte
	n, err := io.ReadFull(r, head[:len(handshakeMagic)])
	if err != nil {
		if n > 0 && string(head[:n]) != handshakeMagic[:n] {
			return nil, fmt.Errorf("%w: it sent %q (is it running without --secret?)", ErrNotSecure, head[:n])
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		return nil, err
	}
	if string(head[:len(handshakeMagic)]) != handshakeMagic {
		return nil, fmt.Errorf("%w: it sent %q (is it running without --secret?)", ErrNotSecure, head[:len(handshakeMagic)])
	}
	if _, err := io.ReadFull(r, head[len(handshakeMagic):]); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint16(head[len(handshakeMagic):]))
	if size > maxHandshakeMsg {
		return nil, fmt.Errorf("%w: handshake message of %d bytes, limit %d", ErrHandshake, size, maxHandshakeMsg)
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}
