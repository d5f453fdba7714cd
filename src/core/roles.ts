/**
 * Who is master: the election rules and the role transitions, in one place.
 *
 *  - exactly one live claimant of `master` (self included) is the master;
 *  - with no claimant, the live eligible server that ranks first claims, once it has
 *    listened for a tock after starting (or has seen a master, which proves it is in
 *    contact with the cluster), so a joiner never takes over a working cluster;
 *  - "ranks first" = higher priority, then the hostname that sorts first (plain string
 *    order, as the original); with equal priorities this is exactly the original's rule;
 *  - two masters (after a partition heals, say): the one that ranks later relinquishes
 *    (or exits, with exit_on_conflict); the one that ranks first keeps the role, raises
 *    its term above the rival's and re-announces at once, so the app on the winner sees
 *    no needless slave/master flap and the fencing token still only grows; a master heard
 *    of only through a slave that hears it (relays.ts) is a rival like any other;
 *  - slaves facing several claimants follow the one with the newest term, if one is;
 *  - a claim below the term of a master we held or followed is not followed until it is
 *    above (a tock and a tick at most): its claimant, told our term, claims above at once, so
 *    the master the cluster agrees on next never holds a lower term than one agreed before;
 *  - every new master takes a term above every term it has seen, in its own slot
 *    (protocol/terms.ts), so no two servers ever claim the same term: the fencing token;
 *  - a master serves under the term it claimed; one that learns of a higher term claims
 *    again above it, in its slot, so a store that saw the higher one accepts its writes.
 *
 * The etcd mode's roles (coordinator/roles.ts) share the rank rule and the outcome of
 * handoffs (elector/), not these rules: there a linearizable store decides who is master (one
 * key, created in a transaction), so there are no conflicts to resolve, no claims to hear
 * and no term slots; here every server decides from what it hears.
 */
import type { Checkpoint, HeartbeatMessage, JsonValue } from '../protocol/messages';
import { MAX_TERM, MAX_TERM_CATCHUP_PER_S, MAX_TERM_STEP, TERM_CEILING } from '../protocol/limits';
import { nextTerm } from '../protocol/terms';
import { healthWordOf, type Instant, type ServerRecord } from '../elector/types';
import { compareRank } from '../elector/rank';
import type { Announcer } from './announce';
import type { FreshnessGuard } from './freshness';
import type { Handoffs } from './handoff';
import type { Instances } from './instances';
import type { MemberTable } from './members';
import type { Quorum } from './quorum';
import type { Relays } from './relays';
import { TermSlots } from './slots';
import type { Words } from './words';
import type { Step } from './step';
import type { PromoteHold } from '../elector/hold';
import type { Timing } from './timing';

type Role = 'none' | 'slave' | 'master';

export interface RolesOptions {
  hostname: string;
  ip: string;
  instanceId: string;
  pid?: number | undefined;
  priority: number;
  exitOnConflict: boolean;
}

export interface RolesParts {
  /** A promote request held while the app drains: our heartbeats name its sender. */
  hold?: PromoteHold;
  timing: Timing;
  step: Step;
  members: MemberTable;
  instances: Instances;
  quorum: Quorum;
  handoffs: Handoffs;
  announcer: Announcer;
  guard: FreshnessGuard | null;
  relays: Relays;
  words: Words;
}

export class Roles {
  readonly hostname: string;
  readonly #ip: string;
  readonly #instanceId: string;
  readonly #pid: number | undefined;
  readonly #p: RolesParts;
  priority: number;
  exitOnConflict: boolean;
  /** Our own row of the table. */
  readonly self: ServerRecord;
  role: Role = 'none';
  masterHostname = '';
  /** The highest term we have seen or held: the next claim goes above it. */
  term = 0;
  /** The term we claimed and serve under while master (0 otherwise): the fencing token. */
  held = 0;
  /** The last term we claimed (kept after we step down). */
  lastClaimed = 0;
  /** The slot our claims are in (slots.ts). */
  readonly #slots: TermSlots;
  /** The newest checkpoint we know, published by us or heard from a master. */
  checkpoint: Checkpoint | null = null;
  /** True once we may claim: a tock of listening has passed, or we have seen a master. */
  settled = false;
  /** When we may claim at the earliest, unless a master is heard first. */
  listenUntil = 0;
  /** exit_on_conflict fired: we wait for the shell to shut us down, deciding nothing. */
  exiting = false;
  stopped = false;
  startedAt = 0;
  /** After a long stall, peers are not removed before the answers to our hello had time to come. */
  #holdRemovalsUntil = -Infinity;
  /** Our master fell silent in this evaluation: tell the others at its end. */
  #announceLoss = false;
  /** As master: when we first saw a term above ours with no rival to explain it (null: none). */
  #higherSince: number | null = null;
  /**
   * As master: a server that follows no master (or follows us) told us of a term above ours.
   * No rival's word can be on its way to explain it, and that server may be withholding its
   * agreement from our claim until we claim above it (#withholds): claim at once.
   */
  #higherUnexplained = false;
  /** When we last claimed above a term on that at once (once a tick at most). */
  #unexplainedClaimAt = -Infinity;
  /**
   * The highest term of a master we held or followed (at most the term we adopted): a claim
   * below it would leave us agreed on a lower term than one a fencing store may have seen.
   */
  #masterTerm = 0;
  /** The claimant we withhold our agreement from, and since when (null: none). */
  #withheld: { hostname: string; since: number } | null = null;
  /** The master we lost and when we last heard from it, for the line that names its successor. */
  #lost: { hostname: string; at: number; what: string } | null = null;
  /**
   * The master we follow: since when, its term then, and ours then (at least the ceiling).
   * Its term past the ceiling is trusted by time followed, not per packet (see noteTerm).
   */
  #followed: { hostname: string; since: number; term: number; base: number } | null = null;

  constructor(options: RolesOptions, self: ServerRecord, parts: RolesParts) {
    this.hostname = options.hostname;
    this.#ip = options.ip;
    this.#instanceId = options.instanceId;
    this.#pid = options.pid;
    this.priority = options.priority;
    this.exitOnConflict = options.exitOnConflict;
    this.self = self;
    this.#p = parts;
    this.#slots = new TermSlots(options.hostname);
  }

  /** The fencing token as the application reads it: the term we serve under, or the highest we know. */
  get fencingTerm(): number {
    return this.role === 'master' ? this.held : this.term;
  }

  /** The slot our next claim is in. */
  get slot(): number {
    return this.#slots.slot;
  }

  /** We heard of a server called `hostname`: our claims avoid its slot from now on. */
  noteHostname(hostname: string): void {
    this.#slots.note(hostname);
  }

  get master(): boolean {
    return this.role === 'master';
  }

  /**
   * We woke from a stall long enough that peers may have acted on our silence, and what
   * our socket kept of their packets meanwhile may be partial (a full buffer drops the
   * newest). Like a joiner: listen for the answers to our marker hello (every server
   * answers at once) before claiming or removing anyone, ending early when a master is heard.
   */
  recover(now: Instant): void {
    const { timing } = this.#p;
    const listen = Math.min(timing.tockMs, timing.tickMs / 2);
    this.settled = false;
    this.listenUntil = Math.max(this.listenUntil, now.mono + listen);
    this.#holdRemovalsUntil = now.mono + listen;
  }

  evaluate(now: Instant): void {
    this.#evaluate(now);
    if (this.#announceLoss) {
      this.#announceLoss = false;
      // We lost our master to silence: say so now, not at our next heartbeat. A server that
      // kept that master on our word (it cannot hear it) learns it is gone a tick sooner.
      if (this.#p.announcer.lastHeartbeatAt !== now.mono) this.#p.announcer.answerSoon(now);
    }
  }

  #evaluate(now: Instant): void {
    const { members, instances, quorum, step, handoffs, relays, words } = this.#p;
    // A master heard of through another server is kept while that word holds: look again at
    // the silent ones whenever words change, and while we rely on one (as it ages).
    if (words.relying || relays.changed) {
      relays.changed = false;
      members.recheck();
    }
    words.relying = false;
    for (const [hostname, peer] of now.mono < this.#holdRemovalsUntil ? [] : members.dead(now)) {
      // Silent to us, but a server we hear hears it as master: a cut between the two of us only.
      if (words.says(hostname, now)) {
        words.relying = true;
        continue;
      }
      if (peer.record.master && !members.hasLeft(peer)) quorum.masterFellSilent(peer);
      // Of two processes with this hostname, the one we followed died: the other is still
      // here, locked or not.
      if (instances.adoptNamesake(hostname, peer, now, 'went silent')) continue;
      if (peer.record.locked) {
        // Kept, being locked, but a silent server is master of nothing: its record must not
        // show a second master beside the one elected after it. Nor is it a member any more.
        if (!members.hasLeft(peer)) {
          members.markSilent(hostname, peer);
          step.membersMayHaveChanged = true;
        }
        members.clearClaim(hostname, peer);
        continue;
      }
      const silentMs = Math.round(now.mono - peer.lastHeard);
      if (hostname === this.masterHostname) {
        step.peerLog(4, `Master ${hostname} silent for ${silentMs} ms; electing a new one`);
        this.masterLost(hostname, peer.lastHeard, 'last heartbeat');
        this.#announceLoss = true;
      }
      step.peerLog(5, `Removing dead server from cluster: ${hostname} (silent for ${silentMs} ms)`);
      members.remove(hostname, peer);
    }
    if (quorum.track(now, this.self.eligible)) this.#listenAfterQuorum(now);
    else if (step.peerReturned && quorum.enabled && this.settled && !this.master && this.#claimants(now).length === 0) {
      // With a quorum, two masters must never overlap. A peer heard again after a silence
      // means a cut may just have healed, and a master on the other side may have kept its
      // quorum through it (a cut shorter than its quorum window): its next heartbeat can be
      // up to a tick away. Ask who is there and listen before claiming, as after regaining
      // quorum; every server answers a hello within a quarter tick.
      this.#listenAfterQuorum(now, 'A server was heard again after a silence (a cut may have healed)');
    }
    step.peerReturned = false;
    // Deadlines are compared as `now >= start + span`, the very sum the wake-up time is:
    // `now - start >= span` can be false at that instant by floating-point rounding
    // (80.7 + 100 - 80.7 < 100), and the core then asked to be woken again at once, forever.
    if (!this.settled && now.mono >= this.listenUntil) this.settled = true;
    instances.expireNamesake(now);
    if (this.master && instances.yieldsName(now, true)) {
      this.relinquish(`another live process named ${this.hostname} keeps the name`);
      this.sendHeartbeat(now);
    }

    let claimants = this.#claimants(now);
    if (!this.master && claimants.length > 0) {
      // During a handoff, a claim older than the master handing off is one it had superseded:
      // not followed, and shown as what it is about to be.
      const current = handoffs.current(claimants, now, (hostname) => this.#claimTerm(hostname, now));
      if (current.length < claimants.length) {
        // A set: with a flood of forged claims, `includes` here cost O(claimants²) a step.
        const kept = new Set(current);
        for (const hostname of claimants) if (!kept.has(hostname)) this.#showSuperseded(hostname);
        claimants = current;
      }
    }
    if (claimants.length > 1 && !this.master) claimants = this.#newestClaim(claimants, now);

    if (this.master && !quorum.has(now, this.self.eligible)) {
      this.relinquish(`lost quorum: fewer than ${quorum.size} eligible servers visible`);
      this.sendHeartbeat(now);
    }

    if (this.master) {
      if (claimants.length === 0) {
        // A term above ours was claimed (a master we never heard, now gone: the other side of
        // a healed partition, say). A store that saw it would refuse our writes: claim again,
        // above it, in our slot. Not at once: when that master is alive beyond a server we do
        // not hear, its followers' word names it within a tick, and the conflict is settled by
        // rank; claiming first made each of two such masters outbid the other once a tick.
        const unexplained = this.#higherUnexplained;
        this.#higherUnexplained = false;
        if (this.term <= this.held) this.#higherSince = null;
        else if (unexplained && now.mono >= this.#unexplainedClaimAt + this.#p.timing.tickMs) {
          this.#higherSince = null;
          this.#unexplainedClaimAt = now.mono;
          this.#claimAbove(this.term, now, 'a server that follows no other master knows a higher term');
        } else if (this.#higherSince === null) this.#higherSince = now.mono;
        else if (now.mono >= this.#higherSince + this.#p.timing.tickMs) {
          this.#higherSince = null;
          this.#claimAbove(this.term, now, 'a higher term was claimed elsewhere');
        }
        return;
      }
      this.#higherSince = null;
      this.#higherUnexplained = false;
      const rival = claimants.sort((a, b) => this.compare(a, b))[0] as string;
      const through = this.#heardThrough(rival, now);
      step.event({ type: 'conflict', hostname: rival });
      if (this.compare(this.hostname, rival) < 0) {
        // We rank first, so we are the one the recomputation picks: keep the role, claim a
        // term above the rival's, and say so at once; the rival yields when it hears us
        // (itself, or through the servers that follow us).
        step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival}${through} also thinks it is master; we rank first and keep the role`);
        // Above every rival's term, unless one is beyond what we adopt from one packet (a
        // forgery past the ceiling): raising ours to it on every evaluation would ratchet
        // without end.
        let above = this.term;
        let rivalTerm = 0;
        for (const claimant of claimants) {
          const term = this.#claimTerm(claimant, now);
          rivalTerm = Math.max(rivalTerm, term);
          if (term >= above && term < MAX_TERM && term - this.term < MAX_TERM_STEP) above = term;
        }
        if (above > this.held) this.#claimAbove(above, now, `${rival} claimed term ${rivalTerm}`);
        // Our table shows the rivals as what they are about to be, as a slave's shows a
        // superseded claim (#newestClaim): they yield when they hear us.
        for (const claimant of claimants) {
          const record = members.get(claimant)?.record;
          if (record?.master && this.#claimTerm(claimant, now) < this.held) {
            record.master = false;
            members.touch(claimant);
          }
        }
        return;
      }
      step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival}${through} also thinks it is master and ranks first`);
      if (this.exitOnConflict) {
        step.log(1, 'The server is shutting down due to master conflict');
        this.exiting = true;
        this.role = 'none';
        this.held = 0;
        this.#setSelfMaster(false);
        this.setMasterHostname('');
        step.event({ type: 'exit', reason: `master conflict with ${rival}` });
        return;
      }
      this.relinquish(`master conflict with ${rival}`);
      this.sendHeartbeat(now);
    }

    if (claimants.length === 1 && this.#withholds(claimants[0] as string, now)) return;
    this.#withheld = null;
    if (claimants.length === 1) {
      const master = claimants[0] as string;
      this.#noteMasterTerm(this.#claimTerm(master, now));
      const peer = members.get(master);
      if (peer && members.isLive(peer, now)) {
        this.takeCheckpoint(peer.ckpt);
        // Shown as superseded while a newer claim stood; that one is over, and this is the master.
        if (!peer.record.master) {
          peer.record.master = true;
          members.touch(master);
        }
      }
      this.settled = true;
      handoffs.done(master, this.hostname);
      this.setMasterHostname(master, now);
      this.#becomeSlave();
      // A promote() of ours that waited for a handoff in flight, or for answers: this master is the one to ask.
      handoffs.cancelClaim();
      if (handoffs.shouldAsk(master, now)) this.askForRole(master);
      return;
    }
    // None, or several (a conflict among peers, which they resolve between themselves).
    this.setMasterHostname('');
    if (claimants.length > 0) return;
    if (this.#mayClaim(now)) {
      this.becomeMaster(now);
    } else if (handoffs.promoteClaimDue(now) && this.#mayClaimPromoted(now)) {
      // promote() found no master, asked who is there, and nobody answered as master: claim.
      this.#p.step.log(4, 'Promoted, and no master answered: claiming now');
      this.settled = true;
      this.becomeMaster(now);
    }
  }

  /** A silent peer is due for removal now (not locked, not kept on a follower's word). */
  removalsDue(now: Instant): boolean {
    if (now.mono < this.#holdRemovalsUntil) return false;
    for (const [hostname, peer] of this.#p.members.dead(now)) {
      if (!peer.record.locked && !this.#p.words.says(hostname, now)) return true;
    }
    return false;
  }

  /**
   * Live servers that claim master: those we hear say so, and those we hear of through a
   * slave that hears them (words.ts).
   */
  #claimants(now: Instant): string[] {
    return this.#p.words.claimants(this.#p.members.liveClaimants(now), now);
  }

  /** " (heard through another server)" for a log line, when that is how we know it. */
  #heardThrough(hostname: string, now: Instant): string {
    return this.#p.words.says(hostname, now) ? ' (heard through another server)' : '';
  }

  #claimTerm(hostname: string, now: Instant): number {
    return this.#p.words.termOf(hostname, now);
  }

  /**
   * When a word we rely on runs out, a higher term waited for its rival long enough, or we stop
   * withholding our agreement from a claimant (Infinity: none).
   */
  nextRelayDeadline(now: Instant): number {
    const higher = this.#higherSince !== null && this.role === 'master' ? this.#higherSince + this.#p.timing.tickMs : Infinity;
    const withheld = this.#withheld !== null && !this.master ? this.#withheld.since + this.#withholdMs : Infinity;
    return Math.min(higher, withheld, this.#p.words.nextDeadline(now));
  }

  /** The term of a master we hold or follow: a later claim below it is not agreed to at once. */
  #noteMasterTerm(term: number): void {
    // Never above what we adopted ourselves (bounded past the ceiling, noteTerm): a claimant
    // claims above the term it heard, bounded the same way, and must be able to get there.
    const bounded = Math.min(term, this.term);
    if (bounded > this.#masterTerm) this.#masterTerm = bounded;
  }

  /**
   * How long we withhold agreement from a claim below #masterTerm: long enough for our term
   * to reach the claimant through a server between us (its next heartbeat, a tick), and for a
   * claimant that hears it only from a follower of its own to wait its tick (SPEC 7.5).
   */
  get #withholdMs(): number {
    const { timing } = this.#p;
    return timing.tockMs + timing.tickMs;
  }

  /**
   * The one claimant is below the term of a master we held or followed: it claimed from an old
   * view (woken from a stall, back from a partition) and has not heard that term. Following it
   * would leave the cluster agreed on a lower term than a fencing store may hold. We name no
   * master (and claim nothing: it is a claimant) and tell it our term at once; it claims above
   * it as soon as it hears it, as a master told of a higher term by a server that follows no
   * master does (SPEC 7.5), and we follow that claim. A claimant we already follow, one that
   * sends no term (the original package), and one that never claims above within the wait (a
   * one-way cut: it cannot hear our term) are followed as before. True while we withhold.
   */
  #withholds(claimant: string, now: Instant): boolean {
    if (this.master || claimant === this.masterHostname) return false;
    const term = this.#claimTerm(claimant, now);
    // Past the ceiling only forged terms go, and a claimant's own term catches up with them
    // over time (noteTerm), not at one claim: waiting for it would hold no master for long.
    if (term <= 0 || term >= this.#masterTerm || this.#masterTerm > TERM_CEILING) return false;
    const withheld = this.#withheld;
    if (withheld === null || withheld.hostname !== claimant) {
      this.#withheld = { hostname: claimant, since: now.mono };
      this.#p.step.logOnce(
        'withhold',
        4,
        `${claimant} claims master with term ${term}, below the term of a master before it (${this.#masterTerm}); waiting for it to claim above`,
      );
      this.setMasterHostname('', now);
      if (this.#p.announcer.lastHeartbeatAt !== now.mono) this.#p.announcer.answerSoon(now);
      return true;
    }
    if (now.mono >= withheld.since + this.#withholdMs) return false;
    this.setMasterHostname('', now);
    return true;
  }

  /** Claim a new term above `above`, in our slot, keeping the role; the others hear it at once. */
  #claimAbove(above: number, now: Instant, why: string): void {
    const term = nextTerm(Math.max(above, this.term), this.slot);
    if (term > MAX_TERM) return;
    this.#p.step.log(4, `Claiming term ${term} (${why}); we keep the master role`);
    this.held = term;
    this.lastClaimed = term;
    this.term = Math.max(this.term, term);
    this.#noteMasterTerm(term);
    this.self.term = term;
    this.#p.members.touch(this.hostname);
    this.#p.announcer.answerSoon(now);
  }

  /**
   * A server that was below quorum (the minority side of a partition) and hears enough
   * servers again is like a joiner: the majority probably has a master it has not heard
   * yet. It asks who is there and listens for half a tick (ending early when it hears a
   * master; every server answers a hello within a quarter tick) instead of claiming at
   * once and forcing a needless change of master on the healed majority. A whole tock,
   * as at start, would hold a healed cluster with no master at all for longer than the
   * tock a conflict may take (SPEC 4.7).
   */
  #listenAfterQuorum(now: Instant, why = `Quorum reached (${this.#p.quorum.size})`): void {
    const { timing } = this.#p;
    this.settled = false;
    const listen = Math.min(timing.tockMs, timing.tickMs / 2);
    this.listenUntil = Math.max(this.listenUntil, now.mono + listen);
    this.#p.announcer.askWhoIsThere(now);
    this.#p.step.log(4, `${why}: asking who is there, and listening ${Math.round(listen)} ms before any claim to master`);
  }

  /**
   * Of several live claimants, a slave follows the one with the highest term when it is
   * the only one: terms only grow with each new master, so the others are older claims
   * about to end. In a handoff the new master's claim can overtake the old master's
   * "I hand off" heartbeat on the way to a third server, which saw two masters at once
   * for a moment. Their records show `master: false` while superseded, so no reader of
   * `servers` sees two masters either. Equal terms (old servers send none) leave all of
   * them: no master until they settle. Masters themselves still see every rival:
   * conflicts are resolved by rank.
   */
  #newestClaim(claimants: string[], now: Instant): string[] {
    let newest = '';
    let newestTerm = -1;
    let tie = false;
    for (const hostname of claimants) {
      const term = this.#claimTerm(hostname, now);
      if (term > newestTerm) {
        newest = hostname;
        newestTerm = term;
        tie = false;
      } else if (term === newestTerm) {
        tie = true;
      }
    }
    if (tie) return claimants;
    for (const hostname of claimants) if (hostname !== newest) this.#showSuperseded(hostname);
    return [newest];
  }

  /** A claim to master superseded by a newer one: its row shows `master: false`. */
  #showSuperseded(hostname: string): void {
    const { members } = this.#p;
    const record = members.get(hostname)?.record;
    if (record?.master) {
      record.master = false;
      members.touch(hostname);
    }
  }

  mayClaim(now: Instant): boolean {
    return this.#mayClaim(now);
  }

  #mayClaim(now: Instant): boolean {
    const { members, instances, quorum, handoffs } = this.#p;
    if (
      !this.self.eligible ||
      !this.settled ||
      this.stopped ||
      !quorum.has(now, this.self.eligible, true) ||
      instances.yieldsName(now, this.master)
    )
      return false;
    if (quorum.leaseHeld(now)) return false;
    if (nextTerm(this.term, this.slot) > MAX_TERM) {
      this.#p.step.logOnce('term-exhausted', 1, `Cannot become master: the term (fencing token) has reached ${MAX_TERM} and cannot grow`);
      return false;
    }
    // A target we have not heard yet (we just started) is about to claim: its claim is on its way.
    const handoff = handoffs.blocksClaimBy(this.hostname, now, (target) => {
      const peer = members.get(target);
      return peer === undefined || (peer.record.eligible && members.isLive(peer, now));
    });
    if (handoff === 'target') return true;
    if (handoff) return false; // it claims, not us
    for (const [hostname, peer] of members.entries()) {
      if (peer.record.eligible && members.isLive(peer, now) && this.compare(hostname, this.hostname) < 0) return false;
    }
    return true;
  }

  /** promote(): ask the master we follow to hand the role to us. */
  askForRole(master: string): void {
    const { announcer, handoffs, step } = this.#p;
    step.log(4, `Asking ${master} to hand the master role to us`);
    handoffs.asked(master);
    announcer.send({ action: 'promote', hostname: this.hostname, target: master, iid: this.#instanceId, seq: announcer.nextSeq() });
  }

  /** promote() may claim without being first in rank or having listened a tock, but not against these. */
  #mayClaimPromoted(now: Instant): boolean {
    const { instances, quorum, handoffs } = this.#p;
    return (
      this.self.eligible &&
      !this.stopped &&
      !handoffs.inFlight(now, this.hostname) &&
      quorum.has(now, true, true) &&
      !instances.yieldsName(now, false) &&
      nextTerm(this.term, this.slot) <= MAX_TERM
    );
  }

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  compare(a: string, b: string): number {
    return compareRank(a, this.#priorityOf(a), b, this.#priorityOf(b));
  }

  /** Ours, a peer's as it last said, or that of a master we hear of only through its follower. */
  #priorityOf(hostname: string): number {
    if (hostname === this.hostname) return this.priority;
    const peer = this.#p.members.get(hostname);
    if (peer) return peer.record.priority;
    return this.#p.words.priorityOf(hostname);
  }

  /** The live eligible peer that ranks first, if any. */
  bestPeer(now: Instant): string | null {
    const { members } = this.#p;
    let best: string | null = null;
    for (const [hostname, peer] of members.entries()) {
      if (!peer.record.eligible || !members.isLive(peer, now)) continue;
      if (best === null || this.compare(hostname, best) < 0) best = hostname;
    }
    return best;
  }

  becomeMaster(now: Instant): void {
    const { step, handoffs, members } = this.#p;
    this.role = 'master';
    // In our slot: no server that claims without hearing us can take the same number.
    this.held = nextTerm(this.term, this.slot);
    this.term = this.held;
    this.#noteMasterTerm(this.held);
    this.lastClaimed = this.held;
    this.self.term = this.held;
    this.#setSelfMaster(true);
    handoffs.done(this.hostname, this.hostname);
    const since = this.#sinceLost(now);
    this.setMasterHostname(this.hostname);
    step.log(4, `We are now the master server (term ${this.held})${since}`, { servers: [...members.hostnames(), this.hostname].sort() });
    step.event({ type: 'master', term: this.held, checkpoint: this.checkpointData });
    handoffs.promoted(this.held);
    this.sendHeartbeat(now);
  }

  #becomeSlave(): void {
    if (this.role === 'slave') return;
    this.role = 'slave';
    this.#setSelfMaster(false);
    this.#p.step.log(4, `We are now a slave server (master: ${this.masterHostname})`);
    this.#p.step.event({ type: 'slave' });
  }

  relinquish(reason: string): void {
    this.#noteMasterTerm(this.held);
    this.#p.step.log(reason.startsWith('master conflict') ? 1 : 4, `We are relinquishing master control: ${reason}`);
    this.role = 'slave';
    this.held = 0;
    this.#setSelfMaster(false);
    this.setMasterHostname('');
    this.#p.step.event({ type: 'slave' });
  }

  /** Leave: no role any more. */
  stop(): void {
    this.stopped = true;
    this.role = 'none';
    this.held = 0;
    this.#setSelfMaster(false);
  }

  #setSelfMaster(master: boolean): void {
    this.self.master = master;
    this.#p.members.touch(this.hostname);
  }

  setMasterHostname(hostname: string, now?: Instant): void {
    if (hostname === this.masterHostname) return;
    const previous = this.masterHostname;
    this.masterHostname = hostname;
    const followedTerm = hostname && hostname !== this.hostname && now ? this.#claimTerm(hostname, now) : undefined;
    this.#followed =
      now && followedTerm !== undefined ? { hostname, since: now.mono, term: followedTerm, base: Math.max(this.term, TERM_CEILING) } : null;
    if (hostname && hostname !== this.hostname) {
      const term = followedTerm ?? this.#p.members.get(hostname)?.record.term ?? 0;
      const through = now ? this.#heardThrough(hostname, now) : '';
      this.#p.step.peerLog(4, `The master server is now: ${hostname}${through} (term ${term})${now ? this.#sinceLost(now) : ''}`);
    }
    const lost = this.#lost;
    if (hostname) this.#lost = null;
    this.#p.step.event(
      lost && lost.hostname !== hostname
        ? { type: 'masterchange', hostname, previous, lostAt: lost.at }
        : { type: 'masterchange', hostname, previous },
    );
  }

  /** The master we followed left (`what`: its last heartbeat, or its shutdown notice) at monotonic `at`. */
  masterLost(hostname: string, at: number, what: string): void {
    this.#lost = { hostname, at, what };
  }

  #sinceLost(now: Instant): string {
    const lost = this.#lost;
    if (!lost || lost.hostname === this.hostname) return '';
    return `, ${Math.round(now.mono - lost.at)} ms after ${lost.hostname}'s ${lost.what}`;
  }

  get checkpointData(): JsonValue | null {
    return this.checkpoint?.d ?? null;
  }

  /**
   * Terms only grow. A term heard is adopted as it is up to TERM_CEILING; past it (only a
   * forged packet gets there first) by at most MAX_TERM_STEP a packet, and towards the
   * term the master we follow had when we began to follow it by MAX_TERM_CATCHUP_PER_S
   * per second since. Per packet alone, a server that missed a flood of forged terms would
   * lag the servers that heard it by as many steps as it missed packets, and if it claimed
   * next its term would be below the last master's. By time followed, it catches up within
   * moments, while a forger would have to be followed as master for years to use up the
   * space. Every term we may then send is one every server accepts.
   */
  noteTerm(message: HeartbeatMessage, now: Instant): void {
    if (message.term === undefined) return;
    let term = this.#bounded(message.term);
    const followed = this.#followed;
    if (followed && message.master && message.hostname === followed.hostname && message.term > term) {
      const allowed = followed.base + MAX_TERM_STEP + Math.floor((MAX_TERM_CATCHUP_PER_S * Math.max(0, now.mono - followed.since)) / 1000);
      term = Math.max(term, Math.min(followed.term, message.term, allowed, MAX_TERM));
    }
    if (term > this.term) this.term = term;
    // A server that follows no master, or us, and knows a term above ours: none of our rivals'
    // words is coming to explain it (#higherSince waits for those).
    if (this.master && !message.master && term > this.held && (message.lead === undefined || message.lead.h === this.hostname))
      this.#higherUnexplained = true;
  }

  #bounded(heard: number): number {
    if (heard <= TERM_CEILING) return heard;
    return Math.min(heard, Math.max(this.term, TERM_CEILING) + MAX_TERM_STEP, MAX_TERM);
  }

  /**
   * A checkpoint from the master we follow (or from our master as it hands off) replaces
   * ours when it is newer, and only when its term is one we hold: a checkpoint from a
   * stranger that is not our master is never taken, and one stamped with a term beyond
   * ours could never be replaced by a real master's.
   */
  takeCheckpoint(ckpt: Checkpoint | null): void {
    const mine = this.checkpoint;
    if (!ckpt || ckpt.t > this.term) return;
    if (!mine || ckpt.t > mine.t || (ckpt.t === mine.t && ckpt.v > mine.v)) this.checkpoint = ckpt;
  }

  sendHeartbeat(now: Instant, handingTo?: string): void {
    const { announcer, handoffs, members } = this.#p;
    const handoff = handingTo ?? handoffs.announced(this.master);
    const self = this.self;
    const term = this.fencingTerm;
    self.term = term;
    self.uptime = Math.max(0, Math.floor((now.mono - this.startedAt) / 1000));
    self.now = now.wall / 1000;
    members.touch(this.hostname);
    const heartbeat: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: this.hostname,
      ip: this.#ip,
      master: this.master,
      eligible: self.eligible,
      uptime: self.uptime,
      data: self.data,
      iid: this.#instanceId,
      seq: announcer.nextSeq(),
    };
    // Our configured timing: a peer configured slower paces its heartbeats to ours, and the
    // status CLI judges our silence by it (the original ignores these fields).
    heartbeat.tick = Math.min(86_400_000, Math.max(10, Math.round(this.#p.timing.tickMs)));
    heartbeat.beats = this.#p.timing.checkBeats;
    if (this.#pid !== undefined) heartbeat.pid = this.#pid;
    // Paced to a faster peer: say so, so a peer that reloaded a shorter tick knows when to expect us.
    const pace = Math.min(86_400_000, Math.max(10, Math.round(announcer.intervalMs(now))));
    if (pace !== heartbeat.tick) heartbeat.pace = pace;
    // Other new fields only when they say something. A master says the term it serves under;
    // a slave, the highest it knows (the next claim, anyone's, goes above it).
    if (term > 0) heartbeat.term = term;
    if (this.priority !== 0) heartbeat.prio = this.priority;
    if (handoff !== undefined) heartbeat.handoff = handoff;
    const draining = this.master ? this.#p.hold?.target : null;
    if (draining) heartbeat.drain = draining;
    // The master (and a master handing off) carries the checkpoint, so every server holds the latest.
    if (this.checkpoint && (this.master || handoff !== undefined)) heartbeat.ckpt = this.checkpoint;
    // The master we follow: a server cut off from it, hearing us, keeps it (relays.ts).
    const master = this.masterHostname;
    const lead = this.role === 'slave' && master && master !== this.hostname ? this.#p.words.lead(master, now) : undefined;
    if (lead) heartbeat.lead = lead;
    const health = healthWordOf(self.health);
    if (health) heartbeat.health = health;
    const echo = this.#p.guard?.takeEchoes();
    if (echo) heartbeat.echo = echo;
    announcer.send(heartbeat);
    announcer.heartbeatSent(now);
  }
}
