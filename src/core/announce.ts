/**
 * What we say, and when: sequence numbers, heartbeats on a fixed grid, hellos, answers to
 * hellos (coalesced), and noticing that our own event loop stalled.
 */
import type { Address, Message } from '../protocol/messages';
import type { FreshnessGuard } from './freshness';
import type { Instant } from '../elector/types';
import type { Step } from './step';
import type { Timing } from './timing';
import { MAX_PACE_UP } from './members';

/**
 * After a stall (our own timer fired more than a tick late) nothing is decided until every
 * datagram queued on the socket meanwhile has been read: we send ourselves a marker (a
 * hello, which also makes every live server answer at once) and wait for it to come back
 * behind the queue. Node reads a socket 32 datagrams per loop turn, and timers run between
 * turns, so no fixed wait is enough. Should the marker be lost, the wait ends after a tick,
 * by which time every live server has sent a fresh heartbeat.
 */
const STALL_DRAIN_TICKS = 1;
/** Heartbeats are never closer together than this, whatever a peer says. */
const MIN_INTERVAL_MS = 10;

export interface Announcing {
  hostname: string;
  instanceId: string;
  clusterId: string;
}

export class Announcer {
  readonly #self: Announcing;
  readonly #timing: Timing;
  readonly #step: Step;
  readonly #guard: FreshnessGuard | null;
  /** Sends one heartbeat now (the facade composes it from the election state). */
  readonly #heartbeat: (now: Instant) => void;
  /** The shortest heartbeat interval a peer is configured for (Infinity: none says). */
  readonly #fastestPeerTick: (now: Instant) => number;
  #seq = 0;
  nextHeartbeatAt = Infinity;
  lastHeartbeatAt = -Infinity;
  #lastAnswerAt = -Infinity;
  #answerDueAt = Infinity;
  /** The wake-up time we last asked for; being called much later than that means we stalled. */
  #requestedWake = Infinity;
  #drainUntil = -Infinity;
  /** The seq of the marker hello we wait for after a stall (-1: none). */
  #markerSeq = -1;

  constructor(
    self: Announcing,
    timing: Timing,
    step: Step,
    guard: FreshnessGuard | null,
    heartbeat: (now: Instant) => void,
    fastestPeerTick: (now: Instant) => number = () => Infinity,
  ) {
    this.#self = self;
    this.#timing = timing;
    this.#step = step;
    this.#guard = guard;
    this.#heartbeat = heartbeat;
    this.#fastestPeerTick = fastestPeerTick;
  }

  /**
   * Our heartbeat interval: our tick, or a faster peer's (up to MAX_PACE_UP times our
   * rate, and never below 10 ms). Peers judge us by their own config; a server configured
   * slower than the others would otherwise be removed between two of its heartbeats.
   */
  intervalMs(now: Instant): number {
    const tick = this.#timing.tickMs;
    const fastest = this.#fastestPeerTick(now);
    if (!(fastest < tick)) return tick;
    return Math.max(fastest, tick / MAX_PACE_UP, MIN_INTERVAL_MS);
  }

  /** A faster peer may have appeared: bring the next heartbeat in to its pace. */
  repace(now: Instant): void {
    const next = now.mono + this.intervalMs(now);
    if (this.nextHeartbeatAt > next) this.nextHeartbeatAt = next;
  }

  nextSeq(): number {
    return ++this.#seq;
  }

  /** Send `message` with our cluster id (none for the default cluster: the original's bytes), to everyone or to `to`. */
  send<T extends Message>(message: T, to?: Address): void {
    if (this.#self.clusterId) message.cid = this.#self.clusterId;
    this.#step.send(message, to);
  }

  /** A hello: every live server answers at once (within a holdoff), and the echoes admit them all. */
  askWhoIsThere(now: Instant, loopback = false): number {
    const seq = this.nextSeq();
    const hello: Message = { action: 'hello', hostname: this.#self.hostname, iid: this.#self.instanceId, seq };
    if (this.#self.clusterId) hello.cid = this.#self.clusterId;
    this.#step.send(hello, undefined, loopback);
    this.#guard?.issued(seq, undefined, now.mono, this.#timing.challengeTtlMs);
    return seq;
  }

  /** A challenge to one unverified instance: only it answers, and its echo admits it. */
  challenge(iid: string, now: Instant): void {
    const guard = this.#guard;
    if (!guard || !guard.shouldChallenge(iid, now.mono, this.#timing.holdoffMs)) return;
    const seq = this.nextSeq();
    this.send({ action: 'hello', hostname: this.#self.hostname, iid: this.#self.instanceId, seq, for: iid });
    guard.issued(seq, iid, now.mono, this.#timing.challengeTtlMs);
  }

  /**
   * Answer with a heartbeat at once, unless we already answered within the holdoff:
   * then once at its end. A joiner gets its round trip; a flood gets a trickle.
   */
  answerSoon(now: Instant): void {
    const holdoff = this.#timing.holdoffMs;
    if (now.mono - this.#lastAnswerAt >= holdoff) {
      this.#answer(now);
    } else {
      this.#answerDueAt = Math.min(this.#answerDueAt, this.#lastAnswerAt + holdoff);
    }
  }

  #answer(now: Instant): void {
    this.#lastAnswerAt = now.mono;
    this.#heartbeat(now);
  }

  /** A heartbeat went out: it answers every pending hello. */
  heartbeatSent(now: Instant): void {
    this.#answerDueAt = Infinity;
    this.lastHeartbeatAt = now.mono;
  }

  /** Send what is due now: a coalesced answer, the heartbeat of the grid. */
  tick(now: Instant): void {
    if (now.mono >= this.#answerDueAt) this.#answer(now);
    if (now.mono >= this.nextHeartbeatAt) {
      // On a fixed grid, so late timers do not add up to fewer heartbeats than one a tick;
      // after a stall, start a new grid rather than send a burst.
      const due = this.nextHeartbeatAt;
      this.#heartbeat(now);
      const interval = this.intervalMs(now);
      this.nextHeartbeatAt = due + interval > now.mono ? due + interval : now.mono + interval;
    }
  }

  /**
   * Our own timer fired more than a tick late: the event loop stalled (CPU starvation, a
   * paused VM). Returns how late, or 0; decisions then wait for the queued datagrams.
   */
  checkStall(now: Instant): number {
    const late = now.mono - this.#requestedWake;
    // Late enough that a peer may have been judged dead, or judged us dead, meanwhile: a
    // tick; with check_beats 1 the quarter tick of grace is all there is.
    if (late <= this.#timing.stallAfterMs) return 0;
    this.#step.logOnce('stall', 2, `Event loop stalled: woke ${Math.round(late)} ms late; reading queued packets before judging any peer`);
    this.#drainUntil = now.mono + STALL_DRAIN_TICKS * this.#timing.tickMs;
    this.#requestedWake = Infinity;
    this.#markerSeq = this.askWhoIsThere(now, true);
    return late;
  }

  /**
   * Before removing a silent peer on a timer that fired late: our event loop was busy, and
   * that peer's heartbeat may be waiting in our socket behind whatever else queued. Send
   * ourselves a marker nobody answers (a hello for our own instance) and decide once it is
   * back. Should it be lost, a holdoff ends the wait.
   */
  quietDrain(now: Instant): void {
    if (this.draining(now)) return;
    const seq = this.nextSeq();
    const marker: Message = { action: 'hello', hostname: this.#self.hostname, iid: this.#self.instanceId, seq, for: this.#self.instanceId };
    if (this.#self.clusterId) marker.cid = this.#self.clusterId;
    this.#step.send(marker, undefined, true);
    this.#markerSeq = seq;
    this.#drainUntil = now.mono + this.#timing.holdoffMs;
  }

  /** Our own datagram came back: if it is the marker, everything queued before it has been read. */
  ownEcho(seq: number | undefined): boolean {
    if (this.#markerSeq < 0 || seq !== this.#markerSeq) return false;
    this.#markerSeq = -1;
    this.#drainUntil = -Infinity;
    return true;
  }

  /** Still reading what queued up during a stall: decide nothing yet. */
  draining(now: Instant): boolean {
    return now.mono < this.#drainUntil;
  }

  /**
   * The wake-up time handed to the caller; a call much later than it is a stall. A deadline
   * already past (a heartbeat the stall held back) is due now, and lateness counts from now:
   * otherwise every datagram read before that timer fires (our own marker's echo first) looks
   * like a new stall and sends a new marker, a hello storm for as long as the timer waits.
   */
  requested(wakeAt: number, now: Instant): void {
    this.#requestedWake = Math.max(wakeAt, now.mono);
  }

  /** The next heartbeat or coalesced answer, and the end of a drain that is still on. */
  nextDeadline(now: Instant): number {
    const drainEnds = now.mono < this.#drainUntil ? this.#drainUntil : Infinity;
    return Math.min(this.nextHeartbeatAt, this.#answerDueAt, drainEnds);
  }
}
