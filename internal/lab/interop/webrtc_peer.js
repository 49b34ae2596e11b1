// A libwebrtc ICE agent (npm @roamhq/wrtc) driven over JSON lines, for
// icetcp's interop tests: the same protocol as libnice_peer.py, ICE only.
// DTLS is not icetcp's business: the remote description carries a dummy
// fingerprint, and only the ICE connection state is reported.
//
// Arguments: controlling|controlled, then the only local address whose
// TCP candidates are passed on (default 127.0.0.1). The controlling peer
// makes the offer (RFC 8445 §6.1.1: the offerer controls).
'use strict';
const wrtc = require('@roamhq/wrtc');
const readline = require('readline');

const controlling = process.argv[2] === 'controlling';
const address = process.argv[3] || '127.0.0.1';

function emit(ev) { process.stdout.write(JSON.stringify(ev) + '\n'); }

const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
let remoteSet = false;
const pendingCandidates = [];

function attr(sdp, name) {
  const m = sdp.match(new RegExp('^a=' + name + ':(.*)$', 'm'));
  return m ? m[1].trim() : '';
}

pc.onicecandidate = (e) => {
  if (!e.candidate) {
    emit({ ev: 'gathering-done', sdp: pc.localDescription.sdp });
    return;
  }
  const line = e.candidate.candidate;
  const f = line.split(/\s+/);
  // TCP only, on the one address the test allows.
  if (f.length > 5 && f[2].toLowerCase() === 'tcp' && f[4] === address) {
    emit({ ev: 'candidate', line: line });
  }
};

const STATES = { checking: 'checking', connected: 'connected', completed: 'connected', failed: 'failed' };
let lastState = '';
function reportState() {
  const s = STATES[pc.iceConnectionState] || pc.iceConnectionState;
  if (s !== lastState) {
    lastState = s;
    emit({ ev: 'state', state: s });
  }
}
pc.oniceconnectionstatechange = reportState;
// wrtc does not always fire the event: look every 20 ms as well.
const poll = setInterval(reportState, 20);

function remoteDescription(ufrag, pwd, type) {
  const fp = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'a=group:BUNDLE 0', 'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:' + ufrag, 'a=ice-pwd:' + pwd, 'a=ice-options:trickle',
    'a=fingerprint:sha-256 ' + fp,
    type === 'offer' ? 'a=setup:actpass' : 'a=setup:active',
    'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144', '',
  ].join('\r\n');
}

async function addCandidate(line) {
  try {
    await pc.addIceCandidate({ candidate: line, sdpMid: '0', sdpMLineIndex: 0 });
  } catch (err) {
    emit({ ev: 'error', error: 'addIceCandidate ' + line + ': ' + err });
  }
}

async function onCredentials(ufrag, pwd) {
  if (controlling) {
    await pc.setRemoteDescription({ type: 'answer', sdp: remoteDescription(ufrag, pwd, 'answer') });
  } else {
    await pc.setRemoteDescription({ type: 'offer', sdp: remoteDescription(ufrag, pwd, 'offer') });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    emit({ ev: 'credentials', ufrag: attr(answer.sdp, 'ice-ufrag'), pwd: attr(answer.sdp, 'ice-pwd') });
  }
  remoteSet = true;
  for (const c of pendingCandidates.splice(0)) await addCandidate(c);
}

async function start() {
  if (controlling) {
    pc.createDataChannel('icetcp-interop');
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    emit({ ev: 'credentials', ufrag: attr(offer.sdp, 'ice-ufrag'), pwd: attr(offer.sdp, 'ice-pwd') });
  }
}

// Commands run one after another: a candidate must not overtake the
// credentials that set the remote description.
let chain = start().catch((err) => emit({ ev: 'error', error: 'start: ' + err }));
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  chain = chain.then(async () => {
    const m = JSON.parse(line);
    switch (m.op) {
      case 'credentials': await onCredentials(m.ufrag, m.pwd); break;
      case 'candidate':
        if (remoteSet) await addCandidate(m.line); else pendingCandidates.push(m.line);
        break;
      case 'end-of-candidates': if (remoteSet) await pc.addIceCandidate(null).catch(() => {}); break;
      case 'quit': quit(); break;
      default: break; // send and close: no data path without DTLS
    }
  }).catch((err) => emit({ ev: 'error', error: String(err) }));
});
rl.on('close', quit);

function quit() {
  clearInterval(poll);
  pc.close();
  process.exit(0);
}
