/**
 * Quorum and the silent master's lease.
 *
 * With a quorum set, no server stays master unless it sees that many eligible servers
 * (itself included) heard within the last tock, and none becomes master unless it heard
 * them within the last tick and a half, nor before a master that fell silent has had a
 * tock + tick to step down on its side (a lease: the two never overlap).
 */
import type { Instant } from '../elector/types';
import type { Lane, MemberTable, Peer } from './members';

export class Quorum {
  readonly #members: MemberTable;
  /** Eligible servers (self included) that must be visible for anyone to be master. 0: off. */
  size: number;
  /** We have been below the quorum, so we are out of touch with the cluster. */
  #below = false;
  /**
   * When the lease of a master that fell silent ends. Cut off from us, it may stay master
   * on its side until a tock after its last heartbeat from our side, which was at most a
   * tick after the last one we heard; we claim no earlier (see `leaseHeld`).
   */
  #leaseEnds = -Infinity;

  constructor(size: number, members: MemberTable) {
    this.size = size;
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
    if (visible >= this.size) return true;
    for (const peer of this.#members.values()) {
      // The very sum nextDeadline wakes us at. Enough seen ends the walk: at 100 servers this
      // ran over every peer at every step.
      if (peer.record.eligible && now.mono < peer.lastHeard + windowOf(peer.lane, claim) && ++visible >= this.size) return true;
    }
    return false;
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
  masterFellSilent(peer: Peer): void {
    if (this.size > 0) this.#leaseEnds = Math.max(this.#leaseEnds, peer.lastHeard + peer.lane.tockMs + peer.lane.tickMs);
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

  /** With a quorum, a peer leaving the quorum window, or the lease ending, may change who may be master. */
  nextDeadline(now: Instant): number {
    if (this.size <= 0) return Infinity;
    let wake = Infinity;
    for (const peer of this.#members.values()) {
      const leaves = peer.lastHeard + windowOf(peer.lane, false);
      if (leaves > now.mono) wake = Math.min(wake, leaves);
    }
    const leaseEnds = this.#leaseEnds;
    if (leaseEnds > now.mono) wake = Math.min(wake, leaseEnds);
    return wake;
  }
}

/** How recently a peer must have been heard to count: its quorum window, or for a claim at most a tick and a half of its own. */
function windowOf(lane: Lane<unknown>, claim: boolean): number {
  return claim ? Math.min(lane.quorumWindowMs, 1.5 * lane.tickMs) : lane.quorumWindowMs;
}
