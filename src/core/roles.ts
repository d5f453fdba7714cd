/**
 * Who is master: one evaluation of the election rules, and every role change.
 *
 *  - exactly one live claimant of `master` (self included) is the master;
 *  - with no claimant, the live eligible server that ranks first claims, once it has
 *    listened for a tock after starting (or has seen a master, which proves it is in
 *    contact with the cluster), so a joiner never takes over a working cluster.
 *
 * The rules themselves live in modules this one acts on, so the order they apply in reads in
 * one place: who may claim and who ranks first (candidacy.ts), two masters (conflict.ts),
 * which claim a slave follows (following.ts), the term and when a claim waits for it
 * (fencing.ts), silent peers (silence.ts), our heartbeat (heartbeat.ts).
 *
 * The etcd mode's roles (coordinator/roles.ts) share the rank rule and the outcome of
 * handoffs (elector/), not these rules: there a linearizable store decides who is master (one
 * key, created in a transaction), so there are no conflicts to resolve, no claims to hear
 * and no term slots; here every server decides from what it hears.
 */
import type { Checkpoint, HeartbeatMessage, JsonValue } from '../protocol/messages';
import { MAX_TERM } from '../protocol/limits';
import { nextTerm } from '../protocol/terms';
import type { Instant, ServerRecord } from '../elector/types';
import type { Announcer } from './announce';
import { Candidacy } from './candidacy';
import { FencingTerms } from './fencing';
import { choiceOf, Following } from './following';
import { Conflict } from './conflict';
import { Heartbeats } from './heartbeat';
import { Silence } from './silence';
import type { FreshnessGuard } from './freshness';
import type { Handoffs } from './handoff';
import type { Instances } from './instances';
import type { MemberTable } from './members';
import type { Quorum } from './quorum';
import type { Relays } from './relays';
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
  readonly #instanceId: string;
  readonly #p: RolesParts;
  priority: number;
  exitOnConflict: boolean;
  /** Our own row of the table. */
  readonly self: ServerRecord;
  role: Role = 'none';
  masterHostname = '';
  readonly #terms: FencingTerms;
  readonly #candidacy: Candidacy;
  readonly #following: Following;
  readonly #heartbeats: Heartbeats;
  readonly #silence: Silence;
  readonly #conflict: Conflict;
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
  /** Our master fell silent in this evaluation: tell the others at its end. */
  #announceLoss = false;
  /** The master we lost and when we last heard from it, for the line that names its successor. */
  #lost: { hostname: string; at: number; what: string } | null = null;
  constructor(options: RolesOptions, self: ServerRecord, parts: RolesParts) {
    this.hostname = options.hostname;
    this.#instanceId = options.instanceId;
    this.priority = options.priority;
    this.exitOnConflict = options.exitOnConflict;
    this.self = self;
    this.#p = parts;
    this.#terms = new FencingTerms(options.hostname, parts.timing);
    this.#candidacy = new Candidacy(this, parts);
    this.#following = new Following(parts.members, parts.words, parts.handoffs);
    this.#silence = new Silence(parts);
    this.#conflict = new Conflict(this, parts.step, parts.members);
    this.#heartbeats = new Heartbeats(this, { ...parts, ip: options.ip, instanceId: options.instanceId, pid: options.pid });
  }

  /** The highest term we have seen or held: the next claim goes above it. */
  get term(): number {
    return this.#terms.term;
  }

  /** The term we claimed and serve under while master (0 otherwise): the fencing token. */
  get held(): number {
    return this.#terms.held;
  }

  /** The last term we claimed (kept after we step down). */
  get lastClaimed(): number {
    return this.#terms.lastClaimed;
  }

  /** The fencing token as the application reads it: the term we serve under, or the highest we know. */
  get fencingTerm(): number {
    return this.role === 'master' ? this.held : this.term;
  }

  /** The slot our next claim is in. */
  get slot(): number {
    return this.#terms.slot;
  }

  /** We heard of a server called `hostname`: our claims avoid its slot from now on. */
  noteHostname(hostname: string): void {
    this.#terms.noteHostname(hostname);
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
    this.#silence.holdUntil(now.mono + this.#listen(now));
  }

  /** Claim nothing for the next half tick (a tock at most) unless a master is heard first; its length. */
  #listen(now: Instant): number {
    const { timing } = this.#p;
    const listen = Math.min(timing.tockMs, timing.tickMs / 2);
    this.settled = false;
    this.listenUntil = Math.max(this.listenUntil, now.mono + listen);
    return listen;
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
    const { members, instances, quorum, step, handoffs } = this.#p;
    this.#silence.act(now, this.masterHostname, (hostname, lastHeard) => {
      this.masterLost(hostname, lastHeard, 'last heartbeat');
      this.#announceLoss = true;
    });
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

    // A master sees every rival (a conflict is settled by rank); a slave, the claims it may
    // follow (following.ts).
    const rivals = this.master ? this.#claimants(now) : null;
    let choice = rivals === null ? this.#following.choose(now) : null;

    if (this.master && !quorum.has(now, this.self.eligible)) {
      this.relinquish(`lost quorum: fewer than ${quorum.size} eligible servers visible`);
      this.sendHeartbeat(now);
    }

    if (rivals !== null && this.master) {
      if (rivals.length === 0) {
        // A term above ours was claimed (a master we never heard, now gone: the other side of
        // a healed partition, say). A store that saw it would refuse our writes: claim again,
        // above it, in our slot. Not at once: when that master is alive beyond a server we do
        // not hear, its followers' word names it within a tick, and the conflict is settled by
        // rank; claiming first made each of two such masters outbid the other once a tick.
        const why = this.#terms.reclaim(now);
        if (why !== null) this.claimAbove(this.term, now, why);
        return;
      }
      this.#terms.facingRival();
      if (!this.#conflict.face(rivals, now)) return;
    }

    // No longer master (or never): the rivals, as they were, are the claims to follow.
    choice ??= choiceOf(rivals ?? []);
    if (choice.count === 1 && this.#withholds(choice.only as string, now)) return;
    this.#terms.agree();
    if (choice.count === 1) {
      const master = choice.only as string;
      this.#terms.noteMasterTerm(this.claimTerm(master, now));
      const peer = members.get(master);
      if (peer && members.isLive(peer, now)) {
        this.takeCheckpoint(peer.ckpt);
        // Shown as superseded while a newer claim stood; that one is over, and this is the master.
        members.showMaster(master, true);
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
    if (choice.count > 0) return;
    if (this.#candidacy.mayClaim(now)) {
      this.becomeMaster(now);
    } else if (handoffs.promoteClaimDue(now) && this.#candidacy.mayClaimPromoted(now)) {
      // promote() found no master, asked who is there, and nobody answered as master: claim.
      this.#p.step.log(4, 'Promoted, and no master answered: claiming now');
      this.settled = true;
      this.becomeMaster(now);
    }
  }

  /** A silent peer is due for removal now (not locked, not kept on a follower's word). */
  removalsDue(now: Instant): boolean {
    return this.#silence.due(now);
  }

  /**
   * Live servers that claim master: those we hear say so, and those we hear of through a
   * slave that hears them (words.ts).
   */
  #claimants(now: Instant): string[] {
    return this.#p.words.claimants(this.#p.members.liveClaimants(now), now);
  }

  /** " (heard through another server)" for a log line, when that is how we know it. */
  heardThrough(hostname: string, now: Instant): string {
    return this.#p.words.says(hostname, now) ? ' (heard through another server)' : '';
  }

  claimTerm(hostname: string, now: Instant): number {
    return this.#p.words.termOf(hostname, now);
  }

  /**
   * When a word we rely on runs out, a higher term waited for its rival long enough, or we stop
   * withholding our agreement from a claimant (Infinity: none).
   */
  nextRelayDeadline(now: Instant): number {
    return Math.min(this.#terms.nextDeadline(this.master), this.#p.words.nextDeadline(now));
  }

  /**
   * Do we name no master, the one claimant being below the term of a master we held or followed
   * (fencing.ts `withholding`)? We claim nothing (it is a claimant) and tell it our term at once;
   * a claimant we already follow is followed as before. True while we withhold.
   */
  #withholds(claimant: string, now: Instant): boolean {
    if (this.master || claimant === this.masterHostname) return false;
    const term = this.claimTerm(claimant, now);
    const withholding = this.#terms.withholding(claimant, term, now);
    if (withholding === 'no') return false;
    if (withholding === 'new')
      this.#p.step.logOnce(
        'withhold',
        4,
        `${claimant} claims master with term ${term}, below the term of a master before it (${this.#terms.masterTerm}); waiting for it to claim above`,
      );
    this.setMasterHostname('', now);
    if (withholding === 'new' && this.#p.announcer.lastHeartbeatAt !== now.mono) this.#p.announcer.answerSoon(now);
    return true;
  }

  /** Claim a new term above `above`, in our slot, keeping the role; the others hear it at once. */
  claimAbove(above: number, now: Instant, why: string): void {
    const term = nextTerm(Math.max(above, this.term), this.slot);
    if (term > MAX_TERM) return;
    this.#p.step.log(4, `Claiming term ${term} (${why}); we keep the master role`);
    this.#terms.claim(term);
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
    const listen = this.#listen(now);
    this.#p.announcer.askWhoIsThere(now);
    this.#p.step.log(4, `${why}: asking who is there, and listening ${Math.round(listen)} ms before any claim to master`);
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
    return this.#candidacy.compare(a, b);
  }

  /** The live eligible peer that ranks first, if any. */
  bestPeer(now: Instant): string | null {
    return this.#candidacy.bestPeer(now);
  }

  becomeMaster(now: Instant): void {
    const { step, handoffs, members } = this.#p;
    this.role = 'master';
    this.#terms.claim(this.#terms.next);
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
    this.#terms.relinquished();
    this.#p.step.log(reason.startsWith('master conflict') ? 1 : 4, `We are relinquishing master control: ${reason}`);
    this.role = 'slave';
    this.#setSelfMaster(false);
    this.setMasterHostname('');
    this.#p.step.event({ type: 'slave' });
  }

  /** exit_on_conflict: no role, and we wait for the shell to shut us down. */
  exit(reason: string): void {
    this.#p.step.log(1, 'The server is shutting down due to master conflict');
    this.exiting = true;
    this.role = 'none';
    this.#terms.held = 0;
    this.#setSelfMaster(false);
    this.setMasterHostname('');
    this.#p.step.event({ type: 'exit', reason });
  }

  /** Leave: no role any more. */
  stop(): void {
    this.stopped = true;
    this.role = 'none';
    this.#terms.held = 0;
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
    const followedTerm = hostname && hostname !== this.hostname && now ? this.claimTerm(hostname, now) : undefined;
    this.#terms.follow(hostname, now, followedTerm);
    if (hostname && hostname !== this.hostname) {
      const term = followedTerm ?? this.#p.members.get(hostname)?.record.term ?? 0;
      const through = now ? this.heardThrough(hostname, now) : '';
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

  /** A term heard (fencing.ts): terms only grow, within bounds past the ceiling. */
  noteTerm(message: HeartbeatMessage, now: Instant): void {
    this.#terms.noteTerm(message, now, this.master, this.hostname);
  }

  /** A checkpoint from the master we follow (or from our master as it hands off): ours if newer and of a term we hold (fencing.ts). */
  takeCheckpoint(ckpt: Checkpoint | null): void {
    if (ckpt && this.#terms.replaces(ckpt, this.checkpoint)) this.checkpoint = ckpt;
  }

  sendHeartbeat(now: Instant, handingTo?: string): void {
    this.#heartbeats.send(now, handingTo);
  }
}
