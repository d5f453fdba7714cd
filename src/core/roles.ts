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
 *    no needless slave/master flap and the fencing token still only grows;
 *  - slaves facing several claimants follow the one with the newest term, if one is;
 *  - every new master takes a term above every term it has seen (a fencing token).
 */
import type { Checkpoint, HeartbeatMessage, JsonValue } from '../protocol/messages';
import { MAX_TERM, MAX_TERM_CATCHUP_PER_S, MAX_TERM_STEP, TERM_CEILING } from '../protocol/limits';
import type { Instant, ServerRecord } from './types';
import type { Announcer } from './announce';
import type { FreshnessGuard } from './freshness';
import type { Handoffs } from './handoff';
import type { Instances } from './instances';
import type { MemberTable } from './members';
import type { Quorum } from './quorum';
import type { Step } from './step';
import type { Timing } from './timing';

type Role = 'none' | 'slave' | 'master';

export interface RolesOptions {
  hostname: string;
  ip: string;
  instanceId: string;
  priority: number;
  exitOnConflict: boolean;
}

export interface RolesParts {
  timing: Timing;
  step: Step;
  members: MemberTable;
  instances: Instances;
  quorum: Quorum;
  handoffs: Handoffs;
  announcer: Announcer;
  guard: FreshnessGuard | null;
}

export class Roles {
  readonly hostname: string;
  readonly #ip: string;
  readonly #instanceId: string;
  readonly #p: RolesParts;
  priority: number;
  exitOnConflict: boolean;
  /** Our own row of the table. */
  readonly self: ServerRecord;
  role: Role = 'none';
  masterHostname = '';
  /** The fencing token: the highest term we have seen or held. */
  term = 0;
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
    this.priority = options.priority;
    this.exitOnConflict = options.exitOnConflict;
    this.self = self;
    this.#p = parts;
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
    const { members, instances, quorum, step, handoffs } = this.#p;
    for (const [hostname, peer] of now.mono < this.#holdRemovalsUntil ? [] : members.dead(now)) {
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
      }
      step.peerLog(5, `Removing dead server from cluster: ${hostname} (silent for ${silentMs} ms)`);
      members.remove(hostname, peer);
    }
    if (quorum.track(now, this.self.eligible)) this.#listenAfterQuorum(now);
    else if (step.peerReturned && quorum.enabled && this.settled && !this.master && members.liveClaimants(now).length === 0) {
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

    let claimants = members.liveClaimants(now);
    if (claimants.length > 1 && !this.master) claimants = this.#newestClaim(claimants);

    if (this.master && !quorum.has(now, this.self.eligible)) {
      this.relinquish(`lost quorum: fewer than ${quorum.size} eligible servers visible`);
      this.sendHeartbeat(now);
    }

    if (this.master) {
      if (claimants.length === 0) return;
      const rival = claimants.sort((a, b) => this.compare(a, b))[0] as string;
      step.event({ type: 'conflict', hostname: rival });
      if (this.compare(this.hostname, rival) < 0) {
        // We rank first, so we are the one the recomputation picks: keep the role, take a
        // term above the rival's, and say so at once; the rival yields when it hears us.
        step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival} also thinks it is master; we rank first and keep the role`);
        // Above the rival's term, unless it is beyond what we adopt from one packet (a forgery
        // past the ceiling): raising ours to it on every evaluation would ratchet without end.
        const rivalTerm = members.get(rival)?.record.term ?? 0;
        if (rivalTerm >= this.term && rivalTerm < MAX_TERM && rivalTerm - this.term < MAX_TERM_STEP) this.term = rivalTerm + 1;
        this.self.term = this.term;
        members.touch(this.hostname);
        this.#p.announcer.answerSoon(now);
        return;
      }
      step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival} also thinks it is master and ranks first`);
      if (this.exitOnConflict) {
        step.log(1, 'The server is shutting down due to master conflict');
        this.exiting = true;
        this.role = 'none';
        this.#setSelfMaster(false);
        this.setMasterHostname('');
        step.event({ type: 'exit', reason: `master conflict with ${rival}` });
        return;
      }
      this.relinquish(`master conflict with ${rival}`);
      this.sendHeartbeat(now);
    }

    if (claimants.length === 1) {
      const master = claimants[0] as string;
      this.takeCheckpoint(members.get(master)?.ckpt ?? null);
      this.settled = true;
      handoffs.done(master, this.hostname);
      this.setMasterHostname(master, now);
      this.#becomeSlave();
      // A promote() of ours that waited for a handoff in flight: this is its target, now master.
      if (handoffs.shouldAsk(master, now)) this.askForRole(master);
      return;
    }
    // None, or several (a conflict among peers, which they resolve between themselves).
    this.setMasterHostname('');
    if (claimants.length === 0 && this.#mayClaim(now)) this.becomeMaster(now);
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
  #newestClaim(claimants: string[]): string[] {
    const { members } = this.#p;
    let newest = '';
    let newestTerm = -1;
    let tie = false;
    for (const hostname of claimants) {
      const term = members.get(hostname)?.record.term ?? 0;
      if (term > newestTerm) {
        newest = hostname;
        newestTerm = term;
        tie = false;
      } else if (term === newestTerm) {
        tie = true;
      }
    }
    if (tie) return claimants;
    for (const hostname of claimants) {
      const record = members.get(hostname)?.record;
      if (record && hostname !== newest && record.master) {
        record.master = false;
        members.touch(hostname);
      }
    }
    return [newest];
  }

  mayClaim(now: Instant): boolean {
    return this.#mayClaim(now);
  }

  #mayClaim(now: Instant): boolean {
    const { members, instances, quorum, handoffs } = this.#p;
    if (!this.self.eligible || !this.settled || this.stopped || !quorum.has(now, this.self.eligible, true) || instances.yieldsName(now, this.master)) return false;
    if (quorum.leaseHeld(now)) return false;
    if (this.term >= MAX_TERM) {
      this.#p.step.logOnce('term-exhausted', 1, `Cannot become master: the term (fencing token) has reached ${MAX_TERM} and cannot grow`);
      return false;
    }
    const handoff = handoffs.blocksClaimBy(this.hostname, now, (target) => {
      const peer = members.get(target);
      return peer !== undefined && peer.record.eligible && members.isLive(peer, now);
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

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  compare(a: string, b: string): number {
    const { members } = this.#p;
    const pa = a === this.hostname ? this.priority : (members.get(a)?.record.priority ?? 0);
    const pb = b === this.hostname ? this.priority : (members.get(b)?.record.priority ?? 0);
    if (pa !== pb) return pb - pa;
    return a < b ? -1 : a > b ? 1 : 0;
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
    this.term += 1;
    this.self.term = this.term;
    this.#setSelfMaster(true);
    handoffs.done(this.hostname, this.hostname);
    const since = this.#sinceLost(now);
    this.setMasterHostname(this.hostname);
    step.log(4, `We are now the master server (term ${this.term})${since}`, { servers: [...members.hostnames(), this.hostname].sort() });
    step.event({ type: 'master', term: this.term, checkpoint: this.checkpointData });
    handoffs.promoted(this.term);
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
    this.#p.step.log(reason.startsWith('master conflict') ? 1 : 4, `We are relinquishing master control: ${reason}`);
    this.role = 'slave';
    this.#setSelfMaster(false);
    this.setMasterHostname('');
    this.#p.step.event({ type: 'slave' });
  }

  /** Leave: no role any more. */
  stop(): void {
    this.stopped = true;
    this.role = 'none';
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
    const followedTerm = hostname && hostname !== this.hostname ? this.#p.members.get(hostname)?.record.term : undefined;
    this.#followed = now && followedTerm !== undefined ? { hostname, since: now.mono, term: followedTerm, base: Math.max(this.term, TERM_CEILING) } : null;
    if (hostname && hostname !== this.hostname) {
      const term = this.#p.members.get(hostname)?.record.term ?? 0;
      this.#p.step.peerLog(4, `The master server is now: ${hostname} (term ${term})${now ? this.#sinceLost(now) : ''}`);
    }
    const lost = this.#lost;
    if (hostname) this.#lost = null;
    this.#p.step.event(lost && lost.hostname !== hostname ? { type: 'masterchange', hostname, previous, lostAt: lost.at } : { type: 'masterchange', hostname, previous });
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
    self.term = this.term;
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
    // Paced to a faster peer: say so, so a peer that reloaded a shorter tick knows when to expect us.
    const pace = Math.min(86_400_000, Math.max(10, Math.round(announcer.intervalMs(now))));
    if (pace !== heartbeat.tick) heartbeat.pace = pace;
    // Other new fields only when they say something.
    if (this.term > 0) heartbeat.term = this.term;
    if (this.priority !== 0) heartbeat.prio = this.priority;
    if (handoff !== undefined) heartbeat.handoff = handoff;
    // The master (and a master handing off) carries the checkpoint, so every server holds the latest.
    if (this.checkpoint && (this.master || handoff !== undefined)) heartbeat.ckpt = this.checkpoint;
    const echo = this.#p.guard?.takeEchoes();
    if (echo) heartbeat.echo = echo;
    announcer.send(heartbeat);
    announcer.heartbeatSent(now);
  }
}
