#!/usr/bin/python3
"""A libnice ICE-TCP agent driven over JSON lines, for icetcp's interop tests.

stdin, one JSON object a line:
  {"op": "credentials", "ufrag": U, "pwd": P}   the remote credentials
  {"op": "candidate", "line": "candidate:..."}  a remote candidate
  {"op": "end-of-candidates"}
  {"op": "send", "data": BASE64}                bytes to send once connected
  {"op": "close"}                               close the connection after the queued bytes
  {"op": "quit"}
stdout, one JSON object a line:
  {"ev": "credentials", "ufrag": U, "pwd": P}
  {"ev": "candidate", "line": "candidate:..."}
  {"ev": "gathering-done", "sdp": S}            generate_local_sdp()
  {"ev": "state", "state": S}                   libnice component states
  {"ev": "selected", "local": L, "remote": R}
  {"ev": "data", "data": BASE64}
  {"ev": "read-end", "error": E}                E is "" for a clean end of stream
  {"ev": "sent", "n": N}                        all queued bytes are written
  {"ev": "error", "error": E}
libnice's own log goes to stderr when NICE_DEBUG is set.

Argument: controlling|controlled, then the local address (default 127.0.0.1).
"""
import base64
import json
import os
import sys

# libnice's debug log (NICE_DEBUG, G_MESSAGES_DEBUG) goes to C's stdout:
# keep fd 1 for it pointed at stderr and write events on a copy of the
# original stdout.
EVENTS = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import gi

gi.require_version("Nice", "0.1")
from gi.repository import Gio, GLib, Nice  # noqa: E402

STATES = {
    Nice.ComponentState.DISCONNECTED: "disconnected",
    Nice.ComponentState.GATHERING: "gathering",
    Nice.ComponentState.CONNECTING: "checking",
    Nice.ComponentState.CONNECTED: "connected-unnominated",
    Nice.ComponentState.READY: "connected",
    Nice.ComponentState.FAILED: "failed",
}


def emit(**kw):
    EVENTS.write(json.dumps(kw) + "\n")
    EVENTS.flush()


class Peer:
    def __init__(self, controlling, address):
        self.ctx = GLib.MainContext.default()
        self.loop = GLib.MainLoop.new(self.ctx, False)
        self.agent = Nice.Agent.new_reliable(self.ctx, Nice.Compatibility.RFC5245)
        self.agent.set_property("ice-udp", False)
        self.agent.set_property("ice-tcp", True)
        self.agent.set_property("ice-trickle", True)
        self.agent.set_property("controlling-mode", controlling)
        addr = Nice.Address.new()
        addr.set_from_string(address)
        self.agent.add_local_address(addr)
        self.agent.connect("new-candidate-full", self.on_candidate)
        self.agent.connect("candidate-gathering-done", self.on_gathering_done)
        self.agent.connect("component-state-changed", self.on_state)
        self.agent.connect("new-selected-pair-full", self.on_selected)
        self.sid = self.agent.add_stream(1)
        self.agent.set_stream_name(self.sid, "application")
        self.io = self.agent.get_io_stream(self.sid, 1)
        # libnice services its sockets only while a read is pending.
        self.read_next()
        self.out = bytearray()
        self.writing = False
        self.close_after = False
        self.sent = 0
        self.ready = False
        self.remote_cands = []
        self.have_creds = False
        self.inbuf = b""
        ok, ufrag, pwd = self.agent.get_local_credentials(self.sid)
        emit(ev="credentials", ufrag=ufrag, pwd=pwd)
        self.agent.gather_candidates(self.sid)
        ch = GLib.IOChannel.unix_new(sys.stdin.fileno())
        GLib.io_add_watch(ch, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP, self.on_stdin)

    def on_candidate(self, agent, cand):
        line = agent.generate_local_candidate_sdp(cand)
        emit(ev="candidate", line=line[len("a="):] if line.startswith("a=") else line)

    def on_gathering_done(self, agent, sid):
        emit(ev="gathering-done", sdp=agent.generate_local_sdp())

    def on_state(self, agent, sid, cid, state):
        name = STATES.get(state, str(state))
        emit(ev="state", state=name)
        if state == Nice.ComponentState.READY:
            self.ready = True
            self.flush()

    def on_selected(self, agent, sid, cid, local, remote):
        emit(ev="selected", local=agent.generate_local_candidate_sdp(local), remote="foundation %s port %d" % (remote.foundation, remote.addr.get_port()))

    def read_next(self):
        self.io.get_input_stream().read_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, self.on_read)

    def on_read(self, stream, res):
        try:
            b = stream.read_bytes_finish(res)
        except GLib.Error as e:
            emit(ev="read-end", error=e.message)
            return
        data = b.get_data()
        if not data:
            emit(ev="read-end", error="")
            return
        emit(ev="data", data=base64.b64encode(data).decode())
        self.read_next()

    def flush(self):
        if self.writing or not self.ready:
            return
        if not self.out:
            if self.close_after:
                self.close_after = False
                emit(ev="sent", n=self.sent)
                self.io.close_async(GLib.PRIORITY_DEFAULT, None, None)
            return
        self.writing = True
        chunk = bytes(self.out[:65536])
        self.io.get_output_stream().write_bytes_async(GLib.Bytes.new(chunk), GLib.PRIORITY_DEFAULT, None, self.on_written)

    def on_written(self, stream, res):
        self.writing = False
        try:
            n = stream.write_bytes_finish(res)
        except GLib.Error as e:
            emit(ev="error", error="write: " + e.message)
            return
        del self.out[:n]
        self.sent += n
        if not self.out and not self.close_after:
            emit(ev="sent", n=self.sent)
        self.flush()

    def on_stdin(self, source, cond):
        # Read what is there and split lines ourselves: a buffered
        # readline() could keep a second line in Python's buffer, where the
        # fd watch never sees it.
        chunk = os.read(sys.stdin.fileno(), 1 << 20)
        if not chunk:
            self.loop.quit()
            return False
        self.inbuf += chunk
        while b"\n" in self.inbuf:
            line, _, self.inbuf = self.inbuf.partition(b"\n")
            try:
                self.command(json.loads(line))
            except Exception as e:  # report and go on: the test decides
                emit(ev="error", error="%s: %s" % (type(e).__name__, e))
        return True

    def command(self, m):
        op = m.get("op")
        if op == "credentials":
            self.agent.set_remote_credentials(self.sid, m["ufrag"], m["pwd"])
            self.have_creds = True
            self.add_candidates()
        elif op == "candidate":
            c = self.agent.parse_remote_candidate_sdp(self.sid, "a=" + m["line"])
            if c is None:
                emit(ev="error", error="libnice cannot parse " + m["line"])
                return
            self.remote_cands.append(c)
            self.add_candidates()
        elif op == "end-of-candidates":
            self.agent.peer_candidate_gathering_done(self.sid)
        elif op == "send":
            self.out += base64.b64decode(m["data"])
            self.flush()
        elif op == "close":
            self.close_after = True
            self.flush()
        elif op == "quit":
            self.loop.quit()

    def add_candidates(self):
        # Remote candidates before the credentials would be checked with
        # empty credentials: hold them until the credentials come.
        if not self.have_creds or not self.remote_cands:
            return
        self.agent.set_remote_candidates(self.sid, 1, self.remote_cands)
        self.remote_cands = []


def main():
    controlling = len(sys.argv) > 1 and sys.argv[1] == "controlling"
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    peer = Peer(controlling, address)
    peer.loop.run()


if __name__ == "__main__":
    main()
