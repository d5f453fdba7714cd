/**
 * Quorum and the silent master's lease.
 *
 * With a quorum set, no server stays master unless it sees that many eligible servers
 * (itself included) heard within the last tock, and none becomes master unless it heard
 * them within the last tick and a half, nor before a master that fell silent has had a
 * tock + tick to step down on its side (a lease: the two never overlap).
 */
import type { Instant } from './types';
import type { MemberTable } from './members';
import type { Timing } from './timing';

export class Quorum {
  readonly #timing: Timing;
  readonly #members: MemberTable;
  /** Eligible servers (self included) that must be visible for anyone to be master. 0: off. */
  size: number;
  /** We have been below the quorum, so we are out of touch with the cluster. */
  #below = false;
  /**
   * When we last heard a master that then fell silent. Cut off from us, it may stay master
   * on its side until a tock after its last heartbeat from our side, which was at most a
   * tick after this; we claim no earlier (see `leaseHeld`).
   */
  #silentMasterHeardAt = -Infinity;

  constructor(size: number, timing: Timing, members: MemberTable) {
    this.size = size;
    this.#timing = timing;
    this.#members = members;
  }

  get enabled(): boolean {
    return this.size > 0;
  }

  /**
   * Quorum counts eligible servers (self included) heard within the last tock (see
   * Timing.quorumWindowMs), not the tock + grace used for removal: a master cut off from
   * the majority steps down within one tock, before the majority can elect a replacement
   * (which also waits out the lease).
   *
   * A claim needs more: the quorum heard within the last tick and a half (`claim`). A
   * server decides its master is dead a tock after the master's last heartbeat; servers
   * cut off at the same moment as the master still look alive for that tock, so counting
   * them would let a server on the minority side of a partition claim. Live peers are heard
   * every tick, so a real quorum passes at once.
   */
  has(now: Instant, selfEligible: boolean, claim = false): boolean {
    if (this.size <= 0) return true;
    let visible = selfEligible ? 1 : 0;
    const timing = this.#timing;
    const window = claim ? Math.min(timing.quorumWindowMs, 1.5 * timing.tickMs) : timing.quorumWindowMs;
    for (const peer of this.#members.values()) {
      if (peer.record.eligible && now.mono < peer.lastHeard + window) visible++; // the very sum nextDeadline wakes us at
    }
    return visible >= this.size;
  }

  /**
   * Follow whether we have the quorum. Returns true at the moment it is regained: we were
   * on the minority side and should listen before claiming.
   */
  track(now: Instant, selfEligible: boolean): boolean {
    if (this.size <= 0) return false;
    if (!this.has(now, selfEligible)) {
      this.#below = true;
      return false;
    }
    if (!this.#below) return false;
    this.#below = false;
    return true;
  }

  /** A master we followed fell silent (not one that left by notice: that holds no lease). */
  masterFellSilent(lastHeard: number): void {
    if (this.size > 0) this.#silentMasterHeardAt = Math.max(this.#silentMasterHeardAt, lastHeard);
  }

  /**
   * A master that went silent may keep the role on its side of a cut until its quorum
   * window runs out, at most a tick + a tock after we last heard it. Claiming no earlier
   * keeps the two from overlapping when heartbeat phases differ; failover stays within the
   * tock + tick of SPEC 4.4. With check_beats 1 the window is longer than a tock and a
   * brief overlap remains possible.
   */
  leaseHeld(now: Instant): boolean {
    return this.size > 0 && now.mono < this.#leaseEnds;
  }

  get #leaseEnds(): number {
    return this.#silentMasterHeardAt + this.#timing.tockMs + this.#timing.tickMs;
  }

  /** With a quorum, a peer leaving the quorum window, or the lease ending, may change who may be master. */
  nextDeadline(now: Instant): number {
    if (this.size <= 0) return Infinity;
    let wake = Infinity;
    const window = this.#timing.quorumWindowMs;
    for (const peer of this.#members.values()) {
      const leaves = peer.lastHeard + window;
      if (leaves > now.mono) wake = Math.min(wake, leaves);
    }
    const leaseEnds = this.#leaseEnds;
    if (leaseEnds > now.mono) wake = Math.min(wake, leaseEnds);
    return wake;
  }
}
