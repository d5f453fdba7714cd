/**
 * The election core: a pure state machine, behind one facade.
 *
 * Inputs are "a message arrived" (`receive`) and "time is now T" (`tick`), plus a few
 * commands (`start`, `shutdown`, `setEligible`, `setTiming`, …). Every call returns an
 * `Output`: messages to send, events to emit, log lines, and when to be woken next.
 * There are no sockets, timers or clock reads in here; the caller passes time in, so
 * tests and the simulator can drive thousands of servers deterministically.
 *
 * Each concern is a module with its own state and deadlines (the wake-up time is their
 * minimum): members.ts (the table and liveness), instances.ts (restarts and duplicate
 * hostnames), quorum.ts (quorum and the silent master's lease), handoff.ts (stepDown and
 * promote), announce.ts (heartbeats, hellos, stalls), roles.ts (the election rules and
 * role changes), freshness.ts (authenticated clusters: which instances may speak). assemble.ts makes and
 * wires them; flow.ts closes every step (the rules, then one Output); requests.ts holds the
 * handover requests. This file routes inputs to them.
 *
 * In an authenticated cluster (`verifyInstances`) a message is acted on only when its
 * instance is known and its seq is new, or when it proves it is alive by echoing one of our
 * hellos: a replayed packet changes nothing.
 */
import type { Address, AppMessage, HealthWord, JsonObject, JsonValue, Message } from '../protocol/messages';
import { healthOf, type Instant, type Output, type ServerRecord } from '../elector/types';
import type { Elector } from '../elector/elector';
import type { Announcer } from './announce';
import { assemble, type CoreParts } from './assemble';
import { StepFlow } from './flow';
import type { MemberTable } from './members';
import { Requests } from './requests';
import { Routine } from './routine';
import type { Roles } from './roles';
import type { Step } from './step';
import type { CoreTiming, Timing } from './timing';
import type { CoreOptions } from './options';

export { DEADLINE_GRACE_TICKS, type CoreTiming } from './timing';
export { outranks } from './instances';
export type { CoreOptions } from './options';

export class ElectionCore implements Elector {
  readonly hostname: string;
  readonly instanceId: string;
  /** Every module, wired (assemble.ts); the ones read on every packet also have a field of their own. */
  readonly #p: CoreParts;
  readonly #flow: StepFlow;
  readonly #requests: Requests;
  /** The routine heartbeat's fast path (null: off). */
  readonly #routine: Routine | null;
  readonly #timing: Timing;
  readonly #step: Step;
  readonly #members: MemberTable;
  readonly #announcer: Announcer;
  readonly #roles: Roles;

  constructor(options: CoreOptions) {
    this.hostname = options.hostname;
    this.instanceId = options.instanceId;
    const parts = (this.#p = assemble(options));
    this.#flow = new StepFlow(options.hostname, parts);
    this.#requests = new Requests(options.hostname, parts);
    this.#routine = options.routine === false ? null : new Routine(parts);
    this.#timing = parts.timing;
    this.#step = parts.step;
    this.#members = parts.members;
    this.#announcer = parts.announcer;
    this.#roles = parts.roles;
  }

  // ---- read-only state -------------------------------------------------------------

  get master(): boolean {
    return this.#roles.role === 'master';
  }
  get slave(): boolean {
    return this.#roles.role === 'slave';
  }
  get masterHostname(): string {
    return this.#roles.masterHostname;
  }
  get eligible(): boolean {
    return this.#roles.self.eligible;
  }
  /**
   * The fencing token: on the master, the term it claimed and serves under (no other server
   * ever holds it); elsewhere, the highest term this server knows. Stamp writes with it.
   */
  get term(): number {
    return this.#roles.fencingTerm;
  }
  get priority(): number {
    return this.#roles.priority;
  }
  /** The newest checkpoint known here (published by the master), or null. */
  get checkpoint(): JsonValue | null {
    return this.#roles.checkpointData;
  }
  get data(): JsonObject {
    return this.#roles.self.data;
  }
  get stopped(): boolean {
    return this.#roles.stopped;
  }
  get tickMs(): number {
    return this.#timing.tickMs;
  }
  get tockMs(): number {
    return this.#timing.tockMs;
  }
  /** How long a peer may be silent and still be live: one tock plus the grace (which follows our timer lateness). */
  get deadAfterMs(): number {
    return this.#timing.deadAfterMs;
  }
  /** The recent peak of this server's timer lateness, ms (what the grace follows). */
  get latePeakMs(): number {
    return this.#timing.latePeakMs;
  }
  /** The most detailed log level anyone reads (lines beyond it are not even built). */
  set logLevel(level: number) {
    this.#step.verbosity = level;
  }

  /** Number of servers in the table, self included. */
  get size(): number {
    return this.#members.size + 1;
  }
  /** Heartbeats that took the routine fast path (routine.ts) since start. */
  get routineHeartbeats(): number {
    return this.#routine?.taken ?? 0;
  }
  /** Instances the freshness guard remembers (authenticated clusters; 0 otherwise). */
  get knownInstances(): number {
    return this.#p.guard?.size ?? 0;
  }

  /**
   * Live eligible servers (self included when eligible), sorted: the set that work split by
   * key is assigned over. Every server computes the same set once the cluster is stable.
   */
  eligibleMembers(_now?: Instant): string[] {
    return this.#flow.eligibleMembers();
  }

  /** A copy of one row of the table (self included), or undefined. */
  record(hostname: string): ServerRecord | undefined {
    if (hostname === this.hostname) return { ...this.#roles.self };
    const peer = this.#members.get(hostname);
    return peer ? { ...peer.record } : undefined;
  }

  /** The whole table as copies, self first; changing them changes nothing here. */
  get table(): Record<string, ServerRecord> {
    const table = Object.create(null) as Record<string, ServerRecord>;
    table[this.hostname] = { ...this.#roles.self };
    for (const [hostname, peer] of this.#members.entries()) table[hostname] = { ...peer.record };
    return table;
  }

  /** Hostnames whose row changed (added, updated or removed) since the last call, or 'all'. */
  takeChanged(): Set<string> | 'all' {
    return this.#members.takeChanged();
  }

  /** Monotonic ms of the last heartbeat heard from `hostname`, or undefined. */
  lastHeard(hostname: string): number | undefined {
    return this.#members.get(hostname)?.lastHeard;
  }
  /** Instance id of the process we follow for `hostname` (ours for our own). */
  instanceOf(hostname: string): string | undefined {
    return hostname === this.hostname ? this.instanceId : this.#members.get(hostname)?.iid;
  }
  /** Hostnames our table shows as master (ourselves included): more than one only in a conflict. */
  mastersShown(): string[] {
    const shown = this.#members.shownMasters();
    if (this.master) shown.push(this.hostname);
    return shown;
  }

  /** The target of a handoff in progress that we started or heard announced, until it is done or over; null when none. */
  get handoffTarget(): string | null {
    return this.#p.handoffs.pending?.target ?? null;
  }

  /** Another live process announces our hostname and keeps it: we never claim master. */
  yieldsHostname(now: Instant): boolean {
    return this.#p.instances.yieldsName(now, this.master);
  }

  // ---- inputs ----------------------------------------------------------------------

  /** Begin: ask who is there, announce ourselves, and start listening for a tock. */
  start(now: Instant): Output {
    if (this.#flow.started) return this.#flush(now);
    const roles = this.#roles;
    this.#flow.started = true;
    roles.startedAt = this.#p.instances.startedAt = now.mono;
    roles.listenUntil = now.mono + this.#timing.tockMs;
    this.#step.membersMayHaveChanged = true; // the first member set: ourselves
    roles.self.now = now.wall / 1000;
    this.#announcer.askWhoIsThere(now);
    roles.sendHeartbeat(now);
    this.#announcer.nextHeartbeatAt = now.mono + this.#timing.tickMs;
    this.#step.log(4, `Listening for the cluster for ${this.#timing.tockMs} ms before any claim to master`);
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** A validated message arrived from `from`. */
  receive(message: Message, from: Address, now: Instant): Output {
    if (!this.#active) return this.#flush(now);
    const step = this.#step;
    if ((message.cid ?? '') !== this.#p.clusterId) {
      step.peerLog(10, `Ignoring ${message.action} from ${message.hostname}: cluster "${message.cid ?? ''}" is not ours`);
      return this.#flush(now);
    }
    this.#flow.checkStall(now);
    // Broadcast loops back to our own socket; that echo carries our instance id. The
    // marker sent after a stall ends the drain: everything queued before it has been read.
    if (message.iid === this.instanceId) {
      if (message.action === 'hello' && this.#announcer.ownEcho(message.seq)) this.#evaluate(now);
      return this.#flush(now);
    }
    if (this.#p.guard) {
      // The codec refuses such packets when authenticated; a direct caller gets the same rule.
      if (message.iid === undefined || message.seq === undefined) {
        step.drop('unverified');
        return this.#flush(now);
      }
      const verdict = this.#p.guard.admit(message, now.mono, this.#timing.challengeTtlMs);
      if (verdict !== 'ok') {
        this.#p.inbox.refuse(message, from, now, verdict);
        return this.#flush(now);
      }
    }
    if (message.hostname === this.hostname) {
      // A namesake's challenge needs our answer too: that is how it learns of us.
      if (message.action === 'hello') this.#p.inbox.answerHello(message, from, now);
      this.#p.instances.receiveOwnHostname(message, from, now, this.master);
    } else {
      const routine = this.#routine !== null && this.#routine.qualifies(message, this.#flow.wakeAt, now);
      this.#p.inbox.receiveFromPeer(message, from, now);
      if (routine && (this.#routine as Routine).stillQuiet(now)) return this.#flush(now);
      if (message.action === 'heartbeat' && message.tick !== undefined && message.tick < this.#timing.tickMs) this.#announcer.repace(now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  /**
   * Send an application message to a hostname or '*' (every other server). Delivery is at
   * most once: UDP, no retries; duplicates and reordered copies are dropped by sequence. A
   * message to one server goes to that server's address alone.
   */
  sendMessage(to: string, messageType: string, payload: JsonValue, now: Instant, ids: { rid?: string; re?: string } = {}): Output {
    const message: AppMessage = {
      action: 'message',
      hostname: this.hostname,
      to,
      type: messageType,
      payload,
      iid: this.instanceId,
      seq: this.#announcer.nextSeq(),
    };
    if (ids.rid !== undefined) message.rid = ids.rid;
    if (ids.re !== undefined) message.re = ids.re;
    // To one server: to the address its heartbeats come from, so the others never see it.
    const peer = to === '*' ? undefined : this.#members.get(to);
    if (this.#active) this.#announcer.send(message, peer && peer.port > 0 ? { address: peer.address, port: peer.port } : undefined);
    return this.#flush(now);
  }

  /**
   * Publish a checkpoint (master only): it rides on every heartbeat of ours from now on,
   * so every server holds it within a tick, and whoever is master next gets it with its
   * `master` event. Returns null when this server is not master.
   */
  setCheckpoint(data: JsonValue, now: Instant): Output | null {
    const roles = this.#roles;
    if (!this.#active || !roles.master) return null;
    const previous = roles.checkpoint;
    const version = previous && previous.t === roles.held ? previous.v + 1 : 1;
    roles.checkpoint = { t: roles.held, v: version, d: data };
    roles.sendHeartbeat(now);
    return this.#flush(now);
  }

  /**
   * Time passed; do whatever is due. `lateMs`: how late the caller's timer fired (the driver
   * measures it; we read no clock): it sets the grace given to silent peers before any
   * deadline is judged, so a timer that fired late defers a removal by that much again, and
   * the datagrams that queued meanwhile are read first.
   */
  tick(now: Instant, lateMs = 0): Output {
    if (!this.#active) return this.#flush(now);
    if (this.#timing.noteLateness(lateMs, now.mono)) this.#members.recheck();
    this.#flow.checkStall(now);
    // Late: a silent peer's heartbeat may be queued on our socket. Read it before judging.
    if (lateMs > 0 && this.#roles.removalsDue(now)) this.#announcer.quietDrain(now);
    this.#p.handoffs.expire(now.mono, this.master, 'a tock');
    if (this.#p.hold.overdue(now.mono, this.#timing.tockMs)) {
      // The app never said its work drained (its own deadline was drain_timeout): go on without it.
      this.#step.log(
        1,
        `Our master work did not report drained within drain_timeout and a tock: handing over to ${this.#p.hold.target} anyway`,
      );
      this.#requests.releaseHold(now, this.#active);
    }
    this.#evaluate(now);
    this.#announcer.tick(now);
    return this.#flush(now);
  }

  /** Change our eligibility; broadcast it at once. A master made ineligible steps down. */
  setEligible(eligible: boolean, now: Instant): Output {
    const roles = this.#roles;
    if (roles.self.eligible === eligible) return this.#flush(now);
    roles.self.eligible = eligible;
    this.#members.touch(this.hostname);
    this.#step.membersMayHaveChanged = true;
    this.#step.log(4, `Eligibility changed: we are ${eligible ? 'now' : 'no longer'} eligible to be master`);
    if (!this.#active) return this.#flush(now);
    if (!eligible && roles.master) roles.relinquish('we are no longer eligible');
    this.#evaluate(now);
    roles.sendHeartbeat(now);
    return this.#flush(now);
  }

  /** Replace the user data object broadcast with our heartbeats. */
  setData(data: JsonObject): void {
    this.#roles.self.data = data;
    this.#members.touch(this.hostname);
  }

  /**
   * Our health check's state, carried by our heartbeats from the next one on (null: none). No
   * heartbeat of its own: a change that matters goes with `setEligible`, which sends one.
   */
  setHealth(health: HealthWord | null): void {
    this.#roles.self.health = healthOf(health ?? undefined);
    this.#members.touch(this.hostname);
  }

  /** The application locks (or unlocks) a peer's record: a locked server is never removed. */
  setLocked(hostname: string, locked: boolean, now: Instant): Output {
    // An unlocked dead peer goes now, not at the next packet.
    if (this.#members.setLocked(hostname, locked) && !locked && this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  /** Apply new timings (config reload) without a restart. */
  setTiming(timing: CoreTiming, now: Instant): Output {
    const before = { tickMs: this.#timing.tickMs, checkBeats: this.#timing.checkBeats };
    if (before.tickMs === timing.tickMs && before.checkBeats === timing.checkBeats) return this.#flush(now);
    // Peers we know keep the deadline of the old timing until they are heard again (then
    // they have heard ours): a reload to a shorter heartbeat removes nobody.
    this.#members.freezeTiming(before);
    this.#timing.tickMs = timing.tickMs;
    this.#timing.checkBeats = timing.checkBeats;
    this.#members.timingChanged();
    if (this.#active) {
      // Say it at once: every peer learns our new tick (and paces to it) a heartbeat sooner,
      // which is as long as they are judged by the longer of the two timings.
      this.#roles.sendHeartbeat(now);
      this.#announcer.nextHeartbeatAt = now.mono + this.#announcer.intervalMs(now);
      this.#evaluate(now);
    } else {
      this.#announcer.nextHeartbeatAt = Math.min(this.#announcer.nextHeartbeatAt, now.mono + this.#announcer.intervalMs(now));
    }
    return this.#flush(now);
  }

  /** Apply reloaded election policy. A lower priority or higher quorum takes effect at once. */
  setPolicy(
    policy: { exitOnConflict: boolean; priority: number; quorum: number; drainMs?: number; preemptDelayMs?: number | null },
    now: Instant,
  ): Output {
    const roles = this.#roles;
    if (policy.preemptDelayMs !== undefined) this.#p.preempt.delayMs = policy.preemptDelayMs;
    if (policy.drainMs !== undefined && this.#p.hold.holdMs !== null) this.#p.hold.holdMs = policy.drainMs;
    roles.exitOnConflict = policy.exitOnConflict;
    this.#p.quorum.size = policy.quorum;
    if (policy.priority !== roles.priority) {
      roles.priority = policy.priority;
      roles.self.priority = policy.priority;
      this.#members.touch(this.hostname);
      if (this.#active) roles.sendHeartbeat(now);
    }
    if (this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  /**
   * Hand the master role to the next server in rank, in one round trip: our last
   * heartbeat as master names it, it claims at once with a higher term, and nobody else
   * claims meanwhile. The outcome arrives as a `stepdown` event.
   */
  stepDown(now: Instant): Output {
    this.#requests.stepDown(now, this.#active);
    return this.#flush(now);
  }

  /**
   * The app's master work has drained (after a `drain` event): hand the role to the server
   * whose promote request was held. Nothing when none is held, or we are no longer master.
   */
  drained(now: Instant): Output {
    this.#requests.releaseHold(now, this.#active);
    return this.#flush(now);
  }

  /**
   * Ask to become master. With a master in place, it is asked to hand off to us (one round
   * trip); with none, we claim at once. The outcome arrives as a `promote` event.
   */
  promote(now: Instant): Output {
    this.#requests.promote(now, this.#active);
    return this.#flush(now);
  }

  /** Leave gracefully: tell the cluster, so the survivors elect without waiting a tock. */
  shutdown(now: Instant): Output {
    if (this.#roles.stopped) return this.#flush(now);
    if (this.#flow.started) {
      this.#announcer.send({ action: 'shutdown', hostname: this.hostname, iid: this.instanceId, seq: this.#announcer.nextSeq() });
      this.#step.log(4, 'Sent shutdown notice to the cluster');
    }
    this.#roles.stop();
    return this.#flush(now);
  }

  get #active(): boolean {
    return this.#flow.active;
  }

  #evaluate(now: Instant): void {
    this.#flow.evaluate(now);
  }

  #flush(now: Instant): Output {
    return this.#flow.flush(now);
  }
}
