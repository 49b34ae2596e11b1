package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/tcpso"
)

// Port prediction: a simultaneous open through a NAT that maps every new
// connection to a new port, allocated in sequence (natcheck's "seq" with a
// delta behind an endpoint-dependent mapping: Class.NeedsPrediction). Its
// server-reflexive candidate is useless to the peer (our SYN toward the
// peer leaves from another port), but the next port is the last one seen
// plus the delta for each connection opened since, and this agent counts
// its own connections (countingNetwork). So, as in the port-prediction
// literature ("two connections to a third party, then a guess"), a round:
//
//  1. Sighting: from a fresh local port (the S-O base of the round, which
//     no earlier punch used, so no 4-tuple of it is in the NAT already),
//     a Binding to the STUN server shows where the series is.
//  2. Announce: the ports our next predictWindow connections will get,
//     as server-reflexive tcp-so candidates tagged icetcp-predict
//     (predictwire.go). A window, not one port, because connections may
//     come between the announcement and our punch: ours are counted,
//     other hosts' behind the same NAT (a CGN's subscribers) are not.
//  3. The peer punches them. A peer whose NAT needs no prediction (its
//     mapping is endpoint-independent) punches every port of the window
//     from its S-O base and says "go" (a punch message, phase go, Seq the
//     round) once its SYNs are out; a peer that needs prediction too
//     replies with its own round: from a fresh port of its own it opens
//     its connections toward our window, one at a time and in order, and
//     announces the port each left from (kind "r").
//  4. Our punch: from the round's base, our next connection (whose port
//     we know from the count) toward the peer's server-reflexive address
//     (after "go") or toward the reply that targets exactly that port.
//     Behind a NAT that answers our SYN with RST, each new SYN takes the
//     next port; the punch then walks the window, never beyond it.
//
// The side that predicts leads; when both must, the controlling agent
// leads and the controlled one replies. A round gives up when the peer
// does not answer within a few round trips, or when the count says our
// punch would leave from outside the window; after maxPredictRounds the
// prediction gives up for good, and the relay (or nothing) is left: a
// NAT busy with other hosts' connections makes the series noisy, and a
// bounded window is all a prediction can promise.

const (
	// featPredict: "I announce and punch predicted ports" (this file).
	featPredict = "icetcp-predict"
	// predictWindow ports are announced per round.
	predictWindow = 8
	// maxPredictRounds bounds the rounds this agent leads.
	maxPredictRounds = 2
	// predictStagger spaces the SYNs of a reply's ordered connections,
	// so that the NAT sees them in the order they were counted.
	predictStagger = time.Millisecond
	// minPredictWait is the least a round waits for the peer's answer
	// (and the relay for a round), however short the round trip.
	minPredictWait = time.Second
)

// errPredictGiveUp fails a prediction pair that cannot work any more.
var errPredictGiveUp = fmt.Errorf("agent: port prediction gave up")

type roundState uint8

const (
	roundSighting  roundState = iota // the sighting's Binding is in flight
	roundAnnounced                   // our window is out; waiting for go or a reply
	roundPunching                    // our punch (or a reply's ordered connections) runs
	roundDone                        // it connected, or gave up
)

// ourRound is one prediction of ours: a lead round (kind "n") or a reply
// to the peer's round (kind "r").
type ourRound struct {
	n     int  // lead: our round number; reply: the peer's round answered
	reply bool // a reply
	base  candidate.Candidate
	state roundState
	since time.Time

	// The sighting: its connection's index and what the server saw.
	sightIdx uint64
	sighted  netip.AddrPort
	delta    int

	// Lead: the announced window is the ports of connections first,
	// first+1, ... (counted), and our punch pair.
	first uint64
	pair  *pair
	gotGo bool // the peer punches our window: our punch waits only for its srflx candidate

	// Reply: the peer's window we connect toward, in order; our pairs
	// and the index of each one's first SYN (0 until known).
	targets []candidate.Candidate
	pairs   []*pair
	idx     []uint64
}

// peerRound is a round of the peer's, as its candidates arrive.
type peerRound struct {
	tag   predictTag // of the first candidate seen (round, kind, count)
	cands []candidate.Candidate
	got   int
	// Punchee: our pairs toward its window, and whether "go" is out.
	pairs  []*pair
	goSent bool
	goAt   time.Time // when "go" went out: the peer's punch follows it
	acted  bool
}

// predictState is port prediction's state. Owned by the loop.
type predictState struct {
	net      *countingNetwork
	rounds   int       // lead rounds started
	cur      *ourRound // our round in progress
	peer     []*peerRound
	remoteAt time.Time // when the peer's class said it must predict
	// ofPair finds the round behind a pair (ours or the peer's).
	ours   map[*pair]*ourRound
	theirs map[*pair]*peerRound
	// remotes are the peer's predicted candidates, by address: pairs
	// with them are judged as predictions, not as plain srflx pairs.
	remotes map[netip.AddrPort]bool
	// bases are our rounds' S-O bases.
	bases map[netip.AddrPort]bool
	// early is our NAT's class as natcheck knew it before its SYN probe
	// ended (mapping and allocation only); nil until then.
	early *natcheck.Class
}

// predicting reports that port prediction is on for this session.
func (a *Agent) predictOn() bool {
	return a.agreed().predict && a.pred.net != nil && a.predictPhase()
}

// predictPhase: rounds run before a pair is selected and, in a session
// that selected the relay, while its search for a direct path runs: the
// relay is nominated as soon as it works, which at short round trips is
// before a round's punch, and the session moves to the predicted pair
// when it validates. (Without this, a round cut short by the relay's
// selection left a sequential NAT on the relay: TestLabPredict, 0 ms.)
func (a *Agent) predictPhase() bool {
	return a.sel.pair == nil || (!a.mv.until.IsZero() && isRelayed(a.sel.pair))
}

// predictStateOK: the agent checks (before selection) or searches.
func (a *Agent) predictStateOK() bool {
	return a.state == StateChecking || (a.state == StateConnected && a.predictPhase())
}

// predictRoundsAllowed bounds the rounds this agent leads: two before a
// pair is selected, and one more with each of the search's upgrade
// rounds (upgradeRounds).
func (a *Agent) predictRoundsAllowed() int { return maxPredictRounds + a.mv.round }

// needsPrediction reports whether our own NAT calls for prediction, and
// whether that is known yet (our NAT is being measured).
func (a *Agent) needsPrediction() (needs, known bool) {
	switch {
	case a.nat.haveLocal:
		return a.nat.local.NeedsPrediction(), true
	case a.pred.early != nil:
		return a.pred.early.NeedsPrediction(), true
	}
	return false, !a.natCheckRunning()
}

// weLead reports whether we lead the rounds of two predicting sides.
func (a *Agent) weLead() bool { return a.role.controlling }

// maybePredict starts a lead round when one is due. Called whenever what
// it depends on changes (classes, credentials, candidates, rounds).
func (a *Agent) maybePredict(now time.Time) {
	if !a.predictOn() || a.peer.ufrag == "" || !a.predictStateOK() {
		return
	}
	a.actOnPeerRounds(now)
	if r := a.pred.cur; r != nil && r.gotGo && r.state == roundAnnounced {
		a.goPunch(r, now) // the peer's candidate it waited for may be in
		return
	}
	if needs, _ := a.needsPrediction(); !needs || a.pred.cur != nil || a.pred.rounds >= a.predictRoundsAllowed() {
		return
	}
	if a.nat.haveRemote && !a.peerCanMeetPrediction() {
		return
	}
	// Without the peer's class (a NAT that drops the SYN probe gives it
	// a second late) we lead anyway: a peer that needs no prediction
	// punches our round, and a controlling peer that needs it too leads
	// its own, which we then answer instead (actOnPeerRounds).
	a.startRound(false, 0, nil, now)
}

// peerCanMeetPrediction judges the peer's class, when we must predict:
// a peer whose NAT lets any SYN in needs no prediction of ours, one that
// must predict too replies to our rounds (when we lead), one whose port
// is predictable as gathered punches them; one whose port is neither
// cannot meet us.
func (a *Agent) peerCanMeetPrediction() bool {
	r := a.nat.remote
	switch {
	case r.Mapping == natcheck.NoNAT || r.InboundSYN == natcheck.SYNPassed:
		return false // our SYN reaches the peer from any port: no prediction needed
	case r.NeedsPrediction():
		return a.weLead() // else we reply to the peer's rounds
	}
	return portPredictable(r)
}

// portPredictable: the class's server-reflexive port is the one a SYN
// toward anyone leaves from (or it may be: unknown mapping).
func portPredictable(c natcheck.Class) bool {
	v, _ := natcheck.SimultaneousOpenViable(natcheck.Class{Mapping: natcheck.EndpointIndependent}, c)
	return v != natcheck.Unlikely && v != natcheck.Predicted
}

// startRound opens a fresh S-O port and sights the NAT's series from it:
// a lead round (number next), or a reply to the peer's round n.
func (a *Agent) startRound(reply bool, n int, targets []candidate.Candidate, now time.Time) {
	ip, ok := a.predictIP()
	if !ok {
		return
	}
	if !reply {
		a.pred.rounds++
		n = a.pred.rounds
	}
	r := &ourRound{n: n, reply: reply, state: roundSighting, since: now, targets: targets}
	a.pred.cur = r
	ln, err := a.seams.net.Listen(a.ctx, netip.AddrPortFrom(ip, 0), true)
	if err != nil {
		a.log.Debugf("prediction round %d: %v", n, err)
		r.state = roundDone
		return
	}
	r.base = candidate.New(candidate.Host, candidate.SO, addrPortOf(ln.Addr()), netip.AddrPort{}, netip.Addr{}, 8191)
	l := &listener{l: ln, cand: r.base, shared: true}
	a.g.listeners = append(a.g.listeners, l) // closed with the others
	a.goTracked(func() { a.acceptLoop(l) })
	if a.pred.bases == nil {
		a.pred.bases = map[netip.AddrPort]bool{}
	}
	a.pred.bases[r.base.Addr] = true
	server := a.cfg.STUNServers[0]
	base := r.base.Addr
	a.goTracked(func() {
		idx, mapped, err := a.sight(base, server)
		a.post(func(now time.Time) { a.onSighting(r, idx, mapped, err, now) })
	})
}

// predictIP is the address of our first host S-O candidate: the port
// prediction is measured and used from it.
func (a *Agent) predictIP() (netip.Addr, bool) {
	for _, l := range a.g.locals {
		if l.Type == candidate.Host && l.TCPType == candidate.SO && l.Addr.Addr().Is4() == a.g.family.Is4() {
			return l.Addr.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// sight connects from base to the STUN server and returns the
// connection's index and mapped address. The connection is closed: the
// series, not the mapping, is what it was for.
func (a *Agent) sight(base netip.AddrPort, server string) (uint64, netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(a.ctx, stunTimeout)
	defer cancel()
	sa, err := resolveSTUN(ctx, server, base.Addr())
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	c, idx, err := a.pred.net.dialIndexed(ctx, base, sa)
	if err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("agent: prediction sighting %s from %s: %w", sa, base, err)
	}
	defer c.Close()
	mapped, err := stuntcp.Binding(ctx, c)
	if err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("agent: prediction sighting %s from %s: %w", sa, base, err)
	}
	return idx, netip.AddrPortFrom(mapped.Addr().Unmap(), mapped.Port()), nil
}

// portAt is the port the sighted series gives the connection of index
// idx.
func (r *ourRound) portAt(idx uint64) netip.AddrPort {
	steps := int64(idx) - int64(r.sightIdx)
	return netip.AddrPortFrom(r.sighted.Addr(), uint16(int64(r.sighted.Port())+steps*int64(r.delta)))
}

func (a *Agent) onSighting(r *ourRound, idx uint64, mapped netip.AddrPort, err error, now time.Time) {
	if r != a.pred.cur || r.state != roundSighting {
		return
	}
	if err != nil || !a.predictOn() {
		if err != nil {
			a.log.Debugf("prediction round %d: %v", r.n, err)
		}
		a.endRound(r, now)
		a.maybePredict(now)
		return
	}
	r.sightIdx, r.sighted, r.delta = idx, mapped, a.nat.local.Delta
	r.since = now
	if r.reply {
		r.state = roundPunching
		a.nextReplyPunch(r, now)
		return
	}
	// Our next connections: the window starts at the next index.
	r.first = a.pred.net.count() + 1
	r.state = roundAnnounced
	for i := range predictWindow {
		a.announce(r, r.portAt(r.first+uint64(i)), predictTag{round: r.n, index: i + 1, count: predictWindow}, now)
	}
	a.log.Debugf("prediction round %d: sighted %s as connection %d, announced %s to %s",
		r.n, mapped, idx, r.portAt(r.first), r.portAt(r.first+predictWindow-1))
}

// announce sends one predicted candidate of round r.
func (a *Agent) announce(r *ourRound, port netip.AddrPort, tag predictTag, now time.Time) {
	c := candidate.New(candidate.ServerReflexive, candidate.SO, port, r.base.Addr, r.sighted.Addr(), 8191-uint16(tag.index))
	c.Ext = []candidate.Extension{{Key: extPredict, Value: tag.String()}}
	a.tr.candidate(TraceLocal, c, now)
	a.sig.out.send(signalingCandidate(c))
}

// endRound closes round r: another may start (the caller runs
// maybePredict).
func (a *Agent) endRound(r *ourRound, now time.Time) {
	r.state = roundDone
	if a.pred.cur == r {
		a.pred.cur = nil
	}
}

// endReply ends a reply and fails its pairs still running.
func (a *Agent) endReply(r *ourRound, now time.Time) {
	a.endRound(r, now)
	for _, p := range r.pairs {
		if p.state != stateSucceeded && p.state != stateFailed && p.pc == nil { // a connected pair: its check decides
			a.failPair(p, fmt.Errorf("%w: the peer's round %d was superseded", errPredictGiveUp, r.n), now)
		}
	}
}

// onPredictedCandidate takes a candidate of the peer that carries a
// prediction tag; false when c has none (an ordinary candidate).
func (a *Agent) onPredictedCandidate(c candidate.Candidate, now time.Time) bool {
	tag, ok, err := predictedTag(c)
	if !ok {
		return false
	}
	switch {
	case err != nil:
		a.warn(fmt.Errorf("agent: remote candidate %q: %w", c.Marshal(), err), now)
		return true
	case !a.agreed().predict:
		a.warn(fmt.Errorf("agent: remote candidate %q: predicted, but %s was not agreed; ignored", c.Marshal(), featPredict), now)
		return true
	case !a.predictPhase():
		return true
	}
	a.tr.candidate(TraceRemote, c, now)
	if tag.reply {
		a.onReplyCandidate(c, tag, now)
		return true
	}
	var pr *peerRound
	for _, q := range a.pred.peer {
		if q.tag.round == tag.round && !q.tag.reply {
			pr = q
		}
	}
	if pr == nil {
		if len(a.pred.peer) >= maxPredictRound {
			return true
		}
		pr = &peerRound{tag: tag, cands: make([]candidate.Candidate, tag.count)}
		a.pred.peer = append(a.pred.peer, pr)
	}
	if tag.count != pr.tag.count || pr.cands[tag.index-1].Addr.IsValid() {
		a.warn(fmt.Errorf("agent: remote candidate %q does not fit the peer's round %d; ignored", c.Marshal(), tag.round), now)
		return true
	}
	pr.cands[tag.index-1] = c
	pr.got++
	if a.pred.remotes == nil {
		a.pred.remotes = map[netip.AddrPort]bool{}
	}
	a.pred.remotes[c.Addr] = true
	a.actOnPeerRounds(now)
	return true
}

// actOnPeerRounds punches or replies to the peer's complete rounds, once
// we know whether we must predict ourselves.
func (a *Agent) actOnPeerRounds(now time.Time) {
	for i, pr := range a.pred.peer {
		if pr.acted || pr.got < pr.tag.count || a.peer.ufrag == "" || !a.predictStateOK() || !a.sig.credsOut {
			continue
		}
		needs, known := a.needsPrediction()
		if !known {
			continue // punch or reply? our class will say
		}
		// A newer round supersedes the older ones: the peer's series
		// moved on.
		for _, old := range a.pred.peer[:i] {
			a.supersede(old, now)
		}
		if needs {
			if a.weLead() {
				continue // the peer replies to ours
			}
			if r := a.pred.cur; r != nil && r.state != roundDone {
				switch {
				case !r.reply && r.state != roundPunching:
					// We led before we knew: the controlling peer leads.
					a.log.Debugf("prediction round %d: abandoned, the peer leads (round %d)", r.n, pr.tag.round)
					a.endRound(r, now)
				case r.reply && r.n < pr.tag.round:
					a.endReply(r, now) // superseded by the peer's new round
				default:
					continue
				}
			}
			pr.acted = true
			a.startRound(true, pr.tag.round, pr.cands, now)
			continue
		}
		pr.acted = true
		if c, ok := a.localClass(); ok && !portPredictable(c) {
			// Our SYNs toward its ports would leave from ports nobody
			// knows: the peer's round cannot meet us.
			a.log.Debugf("prediction: not punching the peer's round %d: our NAT's mapping is %s", pr.tag.round, c.Mapping.Describe())
			continue
		}
		a.punchPeerRound(pr, now)
	}
}

// localClass is our NAT's class, final or early.
func (a *Agent) localClass() (natcheck.Class, bool) {
	switch {
	case a.nat.haveLocal:
		return a.nat.local, true
	case a.pred.early != nil:
		return *a.pred.early, true
	}
	return natcheck.Class{}, false
}

// supersede fails what is left of an older round of the peer's.
func (a *Agent) supersede(pr *peerRound, now time.Time) {
	pr.acted = true
	for _, p := range pr.pairs {
		if p.state != stateSucceeded && p.state != stateFailed && p.pc == nil { // a connected pair: its check decides
			a.failPair(p, fmt.Errorf("%w: the peer's round %d was superseded", errPredictGiveUp, pr.tag.round), now)
		}
	}
}

// punchPeerRound pairs our host S-O candidates with every port of the
// peer's window: they are punched at once (the tick starts S-O pairs),
// and "go" follows once their first SYNs are out.
func (a *Agent) punchPeerRound(pr *peerRound, now time.Time) {
	if a.pred.theirs == nil {
		a.pred.theirs = map[*pair]*peerRound{}
	}
	for _, l := range a.g.locals {
		if l.Type != candidate.Host || l.TCPType != candidate.SO {
			continue
		}
		for _, c := range pr.cands {
			if !candidate.CanPair(l, c) {
				continue
			}
			p, added := a.cl.add(&pair{local: l, remote: c}, a.role.controlling)
			if added {
				pr.pairs = append(pr.pairs, p)
				a.pred.theirs[p] = pr
			}
		}
	}
	a.log.Debugf("prediction: punching the peer's round %d (%d pairs)", pr.tag.round, len(pr.pairs))
	a.maybeGo(pr, now)
}

// maybeGo tells the peer to punch once every pair of its round has sent
// its first SYN (or ended).
func (a *Agent) maybeGo(pr *peerRound, now time.Time) {
	if pr.goSent || len(pr.pairs) == 0 {
		return
	}
	for _, p := range pr.pairs {
		if _, ok := a.sendingSince(p); !ok && p.state != stateFailed && p.state != stateSucceeded {
			return
		}
	}
	pr.goSent, pr.goAt = true, now
	a.sig.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: uint32(pr.tag.round), Phase: signaling.PunchGo}})
}

// onPredictPunchStarted hears that pair p's punch sent its first SYN.
func (a *Agent) onPredictPunchStarted(p *pair, now time.Time) {
	if pr := a.pred.theirs[p]; pr != nil {
		a.maybeGo(pr, now)
	}
}

// onPredictGo is the peer's "go" for our round n: our punch, from the
// round's base toward the peer's server-reflexive S-O address.
func (a *Agent) onPredictGo(n uint32, now time.Time) {
	r := a.pred.cur
	if r == nil || r.reply || r.n != int(n) || r.state != roundAnnounced || !a.predictOn() {
		return
	}
	r.gotGo = true
	a.goPunch(r, now)
}

// goPunch starts the punch of round r after the peer's "go", toward the
// peer's server-reflexive S-O candidate. The peer may say "go" before that
// candidate arrives (it punches our window as soon as the window is in,
// while its own STUN Binding may still be on its way, as on a busy host):
// then the candidate's arrival starts the punch (maybePredict), and the
// round's wait bounds it (predictTick).
func (a *Agent) goPunch(r *ourRound, now time.Time) {
	var target candidate.Candidate
	for _, c := range a.peer.cands {
		if c.Type == candidate.ServerReflexive && c.TCPType == candidate.SO && candidate.CanPair(r.base, c) {
			target = c
			break
		}
	}
	switch {
	case target.Addr.IsValid():
		a.leadPunch(r, target, now)
	case a.peer.eoc:
		a.log.Debugf("prediction round %d: go, but the peer has no server-reflexive S-O candidate", r.n)
		a.endRound(r, now)
		a.maybePredict(now)
	default:
		a.log.Debugf("prediction round %d: go; waiting for the peer's server-reflexive S-O candidate", r.n)
	}
}

// onReplyCandidate takes a reply to our round: once the whole reply is
// in, our punch goes toward the connection that targets the port our
// next connection gets.
func (a *Agent) onReplyCandidate(c candidate.Candidate, tag predictTag, now time.Time) {
	r := a.pred.cur
	if r == nil || r.reply || r.n != tag.round || r.state != roundAnnounced {
		return
	}
	if r.targets == nil {
		r.targets = make([]candidate.Candidate, tag.count)
	}
	if tag.count != len(r.targets) || r.targets[tag.index-1].Addr.IsValid() {
		return
	}
	r.targets[tag.index-1] = c
	for _, t := range r.targets {
		if !t.Addr.IsValid() {
			return
		}
	}
	i := int(a.pred.net.count() + 1 - r.first) // our next connection's place in the window
	if i < 0 || i >= len(r.targets) {
		a.log.Debugf("prediction round %d: %d connections since the announcement, beyond the window", r.n, i)
		a.endRound(r, now)
		a.maybePredict(now)
		return
	}
	a.leadPunch(r, r.targets[i], now)
}

// leadPunch adds our round's punch pair: the tick starts it at once.
func (a *Agent) leadPunch(r *ourRound, target candidate.Candidate, now time.Time) {
	next := a.pred.net.count() + 1
	if next-r.first >= predictWindow {
		a.log.Debugf("prediction round %d: %d connections since the announcement, beyond the window", r.n, next-r.first)
		a.endRound(r, now)
		a.maybePredict(now)
		return
	}
	p, _ := a.cl.add(&pair{local: r.base, remote: target}, a.role.controlling)
	r.pair, r.state, r.since = p, roundPunching, now
	a.ourPair(p, r)
	a.log.Debugf("prediction round %d: punching %s from %s (predicted %s)", r.n, target.Addr, r.base.Addr, r.portAt(next))
}

func (a *Agent) ourPair(p *pair, r *ourRound) {
	if a.pred.ours == nil {
		a.pred.ours = map[*pair]*ourRound{}
	}
	a.pred.ours[p] = r
}

// nextReplyPunch adds the next of a reply's ordered connections: each
// starts once the one before has sent its first SYN (and predictStagger
// later), so that the NAT allocates their ports in the order counted.
func (a *Agent) nextReplyPunch(r *ourRound, now time.Time) {
	k := len(r.pairs)
	if k == len(r.targets) {
		return
	}
	p, added := a.cl.add(&pair{local: r.base, remote: r.targets[k]}, a.role.controlling)
	if !added {
		a.endReply(r, now)
		return
	}
	if k > 0 {
		p.notBefore = now.Add(predictStagger)
	}
	r.pairs = append(r.pairs, p)
	r.idx = append(r.idx, 0)
	a.ourPair(p, r)
	a.pred.net.watchPunch(r.base.Addr, r.targets[k].Addr, func(idx uint64) {
		a.goTracked(func() { a.post(func(now time.Time) { a.onReplySent(r, k, idx, now) }) })
	})
}

// onReplySent records where the k-th connection of reply r left from;
// with all of them out, the reply is announced.
func (a *Agent) onReplySent(r *ourRound, k int, idx uint64, now time.Time) {
	if r.state != roundPunching || k >= len(r.idx) || r.idx[k] != 0 || !a.predictPhase() {
		return
	}
	r.idx[k] = idx
	if len(r.pairs) < len(r.targets) {
		a.nextReplyPunch(r, now)
		return
	}
	for i, idx := range r.idx {
		if idx == 0 {
			return
		}
		a.announce(r, r.portAt(idx), predictTag{reply: true, round: r.n, index: i + 1, count: len(r.targets)}, now)
	}
	a.log.Debugf("prediction: replied to the peer's round %d from %s to %s", r.n, r.portAt(r.idx[0]), r.portAt(r.idx[len(r.idx)-1]))
}

// predictVerdict judges the pairs of a prediction: punches from a
// round's base, and punches toward the peer's predicted ports. ok is false
// for other pairs.
func (a *Agent) predictVerdict(p *pair) (natcheck.Viability, string, bool) {
	switch {
	case a.pred.bases[p.local.Addr]:
		return natcheck.Likely, "a punch from a predicted port", true
	case a.pred.remotes[p.remote.Addr] && p.local.TCPType == candidate.SO:
		return natcheck.Likely, "a punch toward a predicted port", true
	}
	return 0, "", false
}

// predictPunch adjusts the punch of a prediction pair: our lead punch
// walks the rest of the window at most (behind a NAT that answers RST,
// every new SYN of the punch takes the next port), each SYN at once
// after the previous one's RST while the peer's punches run.
func (a *Agent) predictPunch(p *pair, punch *tcpso.Punch) {
	r := a.pred.ours[p]
	if r == nil || r.reply || r.pair != p {
		return
	}
	left := predictWindow - int(a.pred.net.count()+1-r.first)
	if left < 1 {
		left = 1 // beyond the window: one SYN, which the check's failure ends
	}
	punch.Schedule.Attempts = 1
	punch.Schedule.RushSYNs = left
	punch.Schedule.RushBurst = left
}

// predictTick ends rounds the peer does not answer, and notices rounds
// whose punch is over.
func (a *Agent) predictTick(now time.Time, soon func(time.Time)) {
	if !a.predictPhase() {
		return
	}
	// What a round waits for (our checking state, our credentials out,
	// our class) may have come without an event of its own: a peer's
	// round that arrived before then is acted on here.
	a.maybePredict(now)
	if r := a.pred.cur; r != nil {
		switch {
		case r.state == roundAnnounced && !now.Before(r.since.Add(a.predictWait())):
			a.log.Debugf("prediction round %d: no answer from the peer", r.n)
			a.endRound(r, now)
			a.maybePredict(now)
		case r.state == roundPunching && !r.reply && r.pair.state == stateFailed:
			a.log.Debugf("prediction round %d: the punch failed: %v", r.n, r.pair.err)
			a.endRound(r, now)
			a.maybePredict(now)
		}
	}
	// The policy's waits for a prediction end by the clock.
	if until, ok := a.predictUntil(now); ok && now.Before(until) {
		soon(until)
	}
}

// predictWait is how long a round waits for the peer's answer, and the
// relay for a prediction: a few signaling round trips.
func (a *Agent) predictWait() time.Duration {
	return max(6*a.punch.rtt, minPredictWait)
}

// predictUntil says until when a relayed pair should wait for port
// prediction: while our NAT's class may still call for it, while a round
// of ours has not punched yet, and, as the peer's puncher, while the
// peer's announced round has not arrived. The punches themselves are
// judged as likely punches are (likelyUntil).
func (a *Agent) predictUntil(now time.Time) (time.Time, bool) {
	if !a.predictOn() {
		return time.Time{}, false
	}
	if r := a.pred.cur; r != nil && !r.reply && (r.state == roundSighting || r.state == roundAnnounced) {
		return r.since.Add(a.predictWait()), true
	}
	needs, known := a.needsPrediction()
	if !known {
		return a.nat.started.Add(natCheckTimeout), true
	}
	local, _ := a.localClass()
	if a.nat.haveRemote && a.nat.remote.NeedsPrediction() && !needs && portPredictable(local) && !a.pred.remoteAt.IsZero() {
		// Until the peer's round is in and punched, and then until its
		// punch, which our "go" starts, has had its wait: on a busy host
		// the go and the peer's first SYN can be a second apart.
		var last *peerRound
		for _, pr := range a.pred.peer {
			if pr.acted {
				last = pr
			}
		}
		switch {
		case last == nil:
			return a.pred.remoteAt.Add(a.predictWait()), true
		case len(last.pairs) == 0:
			return time.Time{}, false // not punched (our mapping cannot meet it)
		case !last.goSent: // our first SYNs are not all out yet; bounded all the same
			return a.pred.remoteAt.Add(3 * a.predictWait()), true
		}
		return last.goAt.Add(a.predictWait()), true
	}
	return time.Time{}, false
}

// predictPending reports a prediction that may still add a pair.
func (a *Agent) predictPending(now time.Time) bool {
	until, ok := a.predictUntil(now)
	return ok && now.Before(until)
}

// onPredictClass notes when the peer's class calls for its prediction.
func (a *Agent) onPredictClass(now time.Time) {
	if a.nat.haveRemote && a.nat.remote.NeedsPrediction() && a.pred.remoteAt.IsZero() {
		a.pred.remoteAt = now
	}
	if r := a.pred.cur; r != nil && !r.reply && r.state < roundPunching {
		if needs, _ := a.needsPrediction(); needs && !a.peerCanMeetPrediction() && !a.nat.remote.NeedsPrediction() {
			a.log.Debugf("prediction round %d: abandoned, the peer's class is %s", r.n, a.nat.remote)
			a.endRound(r, now)
		}
	}
	a.maybePredict(now)
}

// plainVerdict turns the verdict Predicted on a plain pair (our S-O base
// toward the peer's server-reflexive candidate as gathered) into
// Unlikely: the predicting side's SYN leaves from another port, and the
// prediction's own pairs try it. Our own punch would only spend ports of
// our NAT's series; the peer's early class, though, says nothing yet of
// its filtering (which may let any SYN in: then the pair works), so while
// only the peer predicts and its class is not final the pair stays
// Predicted, tried like a pair the classes cannot judge.
func (a *Agent) plainVerdict(v natcheck.Viability, why string) (natcheck.Viability, string) {
	if v != natcheck.Predicted {
		return v, why
	}
	if !a.nat.local.NeedsPrediction() && a.nat.remote.InboundSYN == natcheck.SYNUnknown {
		return v, why
	}
	if a.agreed().predict {
		return natcheck.Unlikely, why + "; the pairs of the port prediction try it"
	}
	return natcheck.Unlikely, why + "; the peer does not predict ports"
}
