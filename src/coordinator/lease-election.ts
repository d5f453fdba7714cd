/**
 * The lease election: mastership decided by a linearizable store with leases (etcd), as a
 * pure state machine. No I/O, no timers, no clock reads: every input carries the time,
 * every step returns what to do (store ops, datagrams, events, logs, when to wake).
 *
 * The contract is the UDP core's, in store terms:
 *  - we hold a lease and keep it alive; our record lives at `members/<hostname>` under it,
 *    so membership is the set of live leases' records, followed by a watch;
 *  - the master is whoever created the `master` key (under its lease); a campaign is one
 *    transaction "create it if absent". Its term, above every term known (`last-term`, the
 *    members' records, our own), is written with it, and as the fence `term` under the same
 *    lease: strictly increasing, unique, the same on every server, kept across a store
 *    restored or wiped, and checkable by the store itself (a write fenced with "`term`
 *    holds T" fails once the master of term T is gone);
 *  - we act as master only while our lease cannot have expired at the store. Its expiry
 *    there is at least `TTL` after the store acknowledged our last keep-alive, so at least
 *    `TTL` after we SENT that keep-alive; we stop a margin before that instant, whatever
 *    else happens (a lost connection, a frozen process, late timers). Every input first
 *    checks that deadline, so a process resumed after a freeze steps down before anything.
 *    Past it we keep the lease and renew it (the store may still hold it: etcd does through
 *    its own leader elections), and take the role back with the same term if the key is
 *    still ours when the store answers again;
 *  - rank as the UDP core: with no master, the eligible member that ranks first (higher
 *    priority, then hostname in plain string order) campaigns, once it has listened for a
 *    tick after start; after `patience` without a master anyone eligible does, so a member
 *    that ranks first but never campaigns cannot block the cluster. A running master is
 *    never displaced by a joiner: it holds the key;
 *  - a handoff (stepDown, promote, a master made ineligible) deletes the key and names the
 *    successor in one fenced transaction; the successor campaigns at once and the others
 *    wait for it for a tock. Graceful shutdown revokes the lease: key and record go at once.
 *
 * Store data is hostile: every value read goes through the wire codec's validation
 * (records.ts), the table is prototype-free and bounded by `maxServers`, and logs caused
 * by bad values are rate-limited.
 *
 * Each concern is a module, as in the UDP core: session.ts (the lease, the read and the
 * watch, the timing), record.ts (our record), table.ts (the members), roles.ts (the election
 * key, role changes), campaign.ts (the campaign rule and the term), handovers.ts (stepDown,
 * promote, preemption), checkpoints.ts, handoff.ts (stepDown and promote in flight),
 * reader.ts (what the store says, routed), messages.ts (application datagrams), step.ts (what
 * one call produces), parts.ts (the options, and the modules wired together). This file is
 * the facade: it routes inputs to them and reports the wake-up time.
 */
import type { Address, HealthWord, JsonObject, JsonValue, Message } from '../protocol/messages';
import { healthOf, type Instant, type Output, type ServerRecord } from '../elector/types';
import type { Elector } from '../elector/elector';
import type { StoreResult, WatchBatch } from '../protocol/store';
import type { AppMessages } from './messages';
import type { LeaseHandoffs } from './handoff';
import type { LeaseRoles } from './roles';
import type { LeaseSession } from './session';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';
import { MembersReport } from '../elector/members-report';
import type { StoreReader } from './reader';
import type * as records from './records';
import { assemble, type LeaseElectionOptions } from './parts';
import { preemptIfDue } from './handovers';
import type { PromoteHold } from '../elector/hold';
import type { Preemption } from '../elector/preempt';

export { safetyMarginMs } from './session';
export type { LeaseElectionOptions } from './parts';

export class LeaseElection implements Elector {
  readonly hostname: string;
  readonly instanceId: string;
  readonly keys: records.Keys;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  readonly #session: LeaseSession;
  readonly #handoffs: LeaseHandoffs;
  readonly #roles: LeaseRoles;
  readonly #reader: StoreReader;
  readonly #messages: AppMessages;
  readonly #membersReport = new MembersReport();
  readonly #hold: PromoteHold;
  readonly #preempt: Preemption;

  constructor(options: LeaseElectionOptions) {
    this.hostname = options.hostname;
    this.instanceId = options.instanceId;
    const parts = assemble(options);
    this.keys = parts.keys;
    this.#step = parts.step;
    this.#table = parts.table;
    this.#session = parts.session;
    this.#handoffs = parts.handoffs;
    this.#preempt = parts.preempt;
    this.#hold = parts.hold;
    this.#roles = parts.roles;
    this.#reader = parts.reader;
    this.#messages = parts.messages;
  }

  // ---- read-only state -------------------------------------------------------------

  /** The whole table as copies, self first; changing them changes nothing here. */
  get table(): Record<string, ServerRecord> {
    return this.#table.copy();
  }

  /** A copy of one row (self included), or undefined. */
  record(hostname: string): ServerRecord | undefined {
    const record = this.#table.rows[hostname];
    return record ? { ...record } : undefined;
  }

  /** Hostnames whose row changed (added, updated or removed) since the last call. */
  takeChanged(): Set<string> {
    const changed = this.#step.changed;
    this.#step.changed = new Set();
    return changed;
  }

  /** Master as of the last step. Use `isMasterAt(now)` where the time is at hand. */
  get master(): boolean {
    return this.#roles.role === 'master';
  }
  /** Master now: the role, and the lease still certainly alive at the store. */
  isMasterAt(now: Instant): boolean {
    const lease = this.#session.lease;
    return this.#roles.role === 'master' && lease !== null && now.mono < lease.validUntil;
  }
  get slave(): boolean {
    return this.#roles.role === 'slave';
  }
  get masterHostname(): string {
    return this.#roles.masterHostname;
  }
  get eligible(): boolean {
    return this.#table.self.eligible;
  }
  get term(): number {
    return this.#roles.term;
  }
  get priority(): number {
    return this.#table.priority;
  }
  get checkpoint(): JsonValue | null {
    return this.#roles.checkpoint?.d ?? null;
  }
  get data(): JsonObject {
    return this.#table.self.data;
  }
  get stopped(): boolean {
    return this.#session.stopped;
  }
  get tickMs(): number {
    return this.#session.tickMs;
  }
  get tockMs(): number {
    return this.#session.tockMs;
  }
  /** The lease we hold (decimal id), acting on it or not (past its deadline, still renewing it), or null. */
  get lease(): string | null {
    return this.#session.heldLease?.id ?? null;
  }
  /** Monotonic ms until which we may act as master on the current lease (-Infinity: no lease). */
  get leaseValidUntil(): number {
    return this.#session.heldLease?.validUntil ?? -Infinity;
  }
  /** Past the lease's deadline, renewing it (the store may still hold it). */
  get lapsed(): boolean {
    return this.#session.lapsed;
  }
  /** Monotonic ms of our last full read of the store (-Infinity: none yet). */
  get lastReadAt(): number {
    return this.#session.lastReadAt;
  }
  /** The term of the election key as we last read it (0: none known). */
  get masterTerm(): number {
    return this.#roles.master?.term ?? 0;
  }
  /** The term we hold as master, or held last (0: never). The fence of our writes. */
  get heldTerm(): number {
    return this.#roles.heldTerm;
  }
  /** The lease TTL in use (granted), or the one asked for before the first grant, ms. */
  get ttlMs(): number {
    return this.#session.ttlMs;
  }
  /** In touch with the store: a lease, our record registered, the members read and watched. */
  get connected(): boolean {
    const session = this.#session;
    return session.lease !== null && session.registered && session.synced;
  }
  /** Monotonic ms since when store ops have failed without a success (null: in contact). */
  get failingSince(): number | null {
    return this.#session.contact.failingSince;
  }
  get size(): number {
    return this.#table.size;
  }
  /** Where `hostname` takes messages (from its record), or null. */
  addressOf(hostname: string): Address | null {
    return this.#table.addressOf(hostname);
  }
  /** Instance id of the process registered as `hostname` (ours for our own). */
  instanceOf(hostname: string): string | undefined {
    return hostname === this.hostname ? this.instanceId : this.#table.members.get(hostname)?.iid;
  }
  /** Live eligible servers (self included when eligible), sorted: the set keys are split over. */
  eligibleMembers(_now?: Instant): string[] {
    return this.#table.eligibleMembers();
  }

  // ---- inputs ----------------------------------------------------------------------

  /**
   * Begin: take a lease; once it is ours, register, read the cluster and watch it. Rank and
   * patience count from the first read (the store may be unreachable when we start).
   */
  start(now: Instant): Output {
    if (this.#session.started) return this.#flush(now);
    this.#step.membersMayHaveChanged = true;
    this.#table.self.now = now.wall / 1000;
    this.#session.start(now);
    return this.#flush(now);
  }

  /** Time passed: keep-alives, retries, deadlines, the rate-limited record update. */
  tick(now: Instant): Output {
    if (!this.#session.active) return this.#flush(now);
    this.#session.checkDeadline(now);
    this.#handoffs.expire(now.mono, this.#roles.role === 'master', `${Math.round(this.#roles.handoffWindowMs)} ms`);
    if (this.#hold.overdue(now.mono, this.tockMs)) {
      // The app never said its work drained (its own deadline was drain_timeout): go on without it.
      this.#step.log(
        1,
        `Our master work did not report drained within drain_timeout and a tock: handing over to ${this.#hold.target} anyway`,
      );
      this.#releaseHold(now);
    }
    this.#session.tick(now);
    this.#roles.resignIfDue(now);
    this.#roles.evaluate(now);
    return this.#flush(now);
  }

  /** The result of store op `id`. */
  onResult(id: number, result: StoreResult, now: Instant): Output {
    const pending = this.#step.settle(id);
    if (!pending) return this.#flush(now);
    if (this.#session.stopped) {
      if (result.type === 'grant') this.#session.revokeLate(result.lease, now);
      this.#roles.settleAfterStop(pending, result, now);
      return this.#flush(now);
    }
    if (result.type === 'error') {
      this.#session.contact.failed(result, pending.type, now.mono);
      // A restored or wiped store does not know our lease: learn it from a keep-alive now.
      if (/lease not found/i.test(result.error) && pending.epoch === this.#step.epoch) this.#session.checkLeaseSoon(now);
    } else {
      this.#session.contact.succeeded(now.mono);
    }
    this.#session.checkDeadline(now);
    const current = pending.epoch === this.#step.epoch;
    const kind = result.type === 'error' ? pending.type : result.type;
    if (kind === 'campaign' || kind === 'fenced') this.#roles.settle(pending, result, current, now);
    else if (result.type === 'error') this.#session.failed(pending, current, now);
    else this.#session.succeeded(pending, result, current, now);
    this.#roles.evaluate(now);
    return this.#flush(now);
  }

  /** Changes seen by watch `id`, in revision order. */
  onWatch(id: number, batch: WatchBatch, now: Instant): Output {
    const session = this.#session;
    if (session.active && id === session.lastWatchId) this.#reader.learnTerms(batch.events.map((event) => event.kv));
    if (!session.active || id !== session.watchId) return this.#flush(now);
    session.checkDeadline(now);
    if (id !== session.watchId) {
      // The deadline ended the watch: nothing in it is acted on, but a term in it is one we have seen.
      this.#reader.learnTerms(batch.events.map((event) => event.kv));
      return this.#flush(now);
    }
    for (const event of batch.events) {
      this.#session.noteRevision(event.kv.modRevision);
      if (event.kv.modRevision <= this.#session.syncRevision) continue; // already in what we read
      this.#reader.apply(event.kv.key, event.type === 'put' ? event.kv : null, now);
    }
    this.#roles.evaluate(now);
    return this.#flush(now);
  }

  /** Watch `id` broke (connection lost, history compacted): read everything again. */
  onWatchLost(id: number, reason: string, now: Instant): Output {
    if (!this.#session.active || id !== this.#session.watchId) return this.#flush(now);
    this.#session.watchLost(reason, now);
    return this.#flush(now);
  }

  /** A validated datagram arrived (only application messages mean anything here). */
  receive(message: Message, from: Address, now: Instant): Output {
    if (!this.#session.active) return this.#flush(now);
    this.#session.checkDeadline(now);
    this.#messages.receive(message, from, now, this.tockMs);
    return this.#flush(now);
  }

  /** An application message, by UDP, to the address `to` registered (or to every member for '*'). */
  sendMessage(to: string, messageType: string, payload: JsonValue, now: Instant, ids: { rid?: string; re?: string } = {}): Output {
    if (this.#session.active) this.#messages.send(to, messageType, payload, ids);
    return this.#flush(now);
  }

  /**
   * Master only: store a checkpoint, fenced by our term, so the next master resumes from it.
   * It is retried until etcd stores it or we lose the role; a `checkpoint` event with
   * `ticket` (settling every call up to it) says which. null: not master.
   */
  setCheckpoint(data: JsonValue, now: Instant, ticket = 0): Output | null {
    if (!this.#session.active) return null;
    this.#session.checkDeadline(now);
    return this.#roles.setCheckpoint(data, now, ticket) ? this.#flush(now) : null;
  }

  setEligible(eligible: boolean, now: Instant): Output {
    const self = this.#table.self;
    if (self.eligible === eligible) return this.#flush(now);
    self.eligible = eligible;
    this.#step.changed.add(this.hostname);
    this.#step.membersMayHaveChanged = true;
    this.#step.log(4, `Eligibility changed: we are ${eligible ? 'now' : 'no longer'} eligible to be master`);
    if (!this.#session.active) return this.#flush(now);
    this.#session.checkDeadline(now);
    if (!eligible) this.#roles.becameIneligible(now);
    this.#session.record.announceNow(now);
    this.#roles.evaluate(now);
    return this.#flush(now);
  }

  /** Replace the user data object; it reaches the store at most once a tick. */
  setData(data: JsonObject): void {
    this.#table.self.data = data;
    this.#step.changed.add(this.hostname);
  }

  /**
   * Our health check's state. Our own record shows all of it; the store gets only the state
   * and rise/fall (record.ts): every change of our record is an etcd write, and counts that
   * change with every check would make one a check for every server that runs one.
   */
  setHealth(health: HealthWord | null): void {
    this.#table.self.health = healthOf(health ?? undefined);
    this.#step.changed.add(this.hostname);
  }

  /** The application locks (or unlocks) a record: a locked server is never removed, only marked gone. */
  setLocked(hostname: string, locked: boolean, now: Instant): Output {
    this.#table.setLocked(hostname, locked);
    return this.#flush(now);
  }

  /** A config reload: new timings (a new TTL applies from the next lease). */
  setTiming(timing: { tickMs: number; checkBeats: number; ttlSeconds?: number }, now: Instant): Output {
    const session = this.#session;
    session.tickMs = timing.tickMs;
    session.checkBeats = timing.checkBeats;
    if (timing.ttlSeconds !== undefined) session.ttlSeconds = timing.ttlSeconds;
    session.record.retimed(now);
    if (session.active) this.#roles.evaluate(now);
    return this.#flush(now);
  }

  setPolicy(policy: { priority: number; drainMs?: number; preemptDelayMs?: number | null }, now: Instant): Output {
    const table = this.#table;
    if (policy.preemptDelayMs !== undefined) this.#preempt.delayMs = policy.preemptDelayMs;
    if (policy.drainMs !== undefined && this.#hold.holdMs !== null) this.#hold.holdMs = policy.drainMs;
    if (policy.priority !== table.priority) {
      table.priority = policy.priority;
      table.self.priority = policy.priority;
      this.#step.changed.add(this.hostname);
      this.#session.record.announceNow(now);
    }
    if (this.#session.active) this.#roles.evaluate(now);
    return this.#flush(now);
  }

  /** Hand the role to the next member in rank: delete our key and name it, in one fenced transaction. */
  stepDown(now: Instant): Output {
    if (this.#session.active) this.#session.checkDeadline(now);
    this.#roles.stepDown(now);
    return this.#flush(now);
  }

  /** The app's master work has drained (after a `drain` event): hand the role to the server whose request was held. */
  drained(now: Instant): Output {
    if (this.#session.active) {
      this.#session.checkDeadline(now);
      this.#releaseHold(now);
    }
    return this.#flush(now);
  }

  #releaseHold(now: Instant): void {
    const target = this.#hold.take();
    if (target !== null) this.#roles.handOffHeld(target, now);
  }

  /** Ask to become master: the master hands over (it watches our request); with none, campaign now. */
  promote(now: Instant): Output {
    if (!this.#session.active) {
      this.#step.event({ type: 'promote', ok: false, reason: 'this server is not running' });
      return this.#flush(now);
    }
    this.#session.checkDeadline(now);
    this.#roles.promote(now);
    return this.#flush(now);
  }

  /**
   * Graceful shutdown, first step: a master relinquishes (`slave` reaches the app before the
   * lease is revoked, as client-go's OnStoppedLeading) and sends a checkpoint not yet stored
   * with its resign; nobody campaigns any more. `shutdown` follows, in a step of its own.
   */
  leave(now: Instant): Output {
    if (this.#session.active) {
      this.#session.checkDeadline(now);
      this.#roles.leave(now);
    }
    return this.#flush(now);
  }

  /** Leave: revoking the lease deletes our record and (if we are master) the election key at once. */
  shutdown(now: Instant): Output {
    if (this.#session.stopped) return this.#flush(now);
    this.#roles.stop(now);
    this.#session.shutdown(now);
    return this.#flush(now);
  }

  // ---- output ------------------------------------------------------------------------------

  #wakeAt(now: Instant): number {
    if (!this.#session.active) return Infinity;
    let wake = Math.min(this.#session.wakeAt(), this.#handoffs.wakeAt(), this.#roles.wakeAt(now));
    if (this.#roles.role === 'master') wake = Math.min(wake, this.#hold.nextDeadline(this.tockMs));
    else wake = Math.min(wake, this.#preempt.nextDeadline());
    return Math.max(wake, now.mono);
  }

  #flush(now: Instant): Output {
    if (this.#preempt.enabled) {
      const self = { hostname: this.hostname, instanceId: this.instanceId, inContact: this.#session.active && this.connected };
      preemptIfDue(now, self, this.#roles, { step: this.#step, table: this.#table, handoffs: this.#handoffs, preempt: this.#preempt });
    }
    // A request held for a role we no longer have: its sender learns the new master by itself.
    if (this.#roles.role !== 'master' && this.#hold.target !== null) this.#hold.clear();
    if (this.#session.started && this.#step.membersMayHaveChanged) {
      this.#step.membersMayHaveChanged = false;
      const members = this.#table.eligibleMembers();
      this.#membersReport.report(
        members.join('\n'),
        () => members,
        (event) => this.#step.event(event),
      );
    }
    return this.#step.take(this.#wakeAt(now));
  }
}
