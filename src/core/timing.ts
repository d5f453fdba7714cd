/**
 * The spans every rule of the core is measured in, derived from one tick and check_beats.
 * One object shared by the modules, so a config reload changes them all at once.
 */

export interface CoreTiming {
  /** Milliseconds between heartbeats (one tick). */
  tickMs: number;
  /** Ticks per tock; a peer silent for a tock is dead. */
  checkBeats: number;
}

/**
 * A peer is dead a quarter tick after its tock runs out. Without it, losing
 * check_beats - 1 heartbeats in a row would put the next one exactly on the deadline and
 * a little timer lateness would remove a live server; VRRP adds a "skew time" for the
 * same reason. Failover stays well inside tock + tick.
 */
export const DEADLINE_GRACE_TICKS = 0.25;

/** Answers to `hello` are coalesced within this window so a flood of hellos cannot make us flood. */
const MAX_ANSWER_HOLDOFF_MS = 250;

export class Timing implements CoreTiming {
  tickMs: number;
  checkBeats: number;

  constructor(timing: CoreTiming) {
    this.tickMs = timing.tickMs;
    this.checkBeats = timing.checkBeats;
  }

  get tockMs(): number {
    return this.tickMs * this.checkBeats;
  }

  /** How long a peer may be silent and still be live: one tock plus the grace. */
  get deadAfterMs(): number {
    return this.deadAfterFor(this);
  }

  /** The same for another timing (a frozen lane's, from before a reload). */
  deadAfterFor(timing: CoreTiming): number {
    return timing.tickMs * (timing.checkBeats + DEADLINE_GRACE_TICKS);
  }

  /** Answers to hellos are at least this far apart; also how late a packet may overtake another. */
  get holdoffMs(): number {
    return Math.min(this.tickMs / 4, MAX_ANSWER_HOLDOFF_MS);
  }

  /**
   * How long an echo of our hello admits an instance. Answers come within a holdoff; any
   * longer only allows for a slow network, since each echo admits its sender once.
   */
  get challengeTtlMs(): number {
    return Math.max(this.tickMs, 1000);
  }

  /**
   * A tock; with check_beats 1, a quarter tick more: a tock of a single heartbeat interval
   * leaves no room for jitter, and the master would step down between two heartbeats.
   */
  get quorumWindowMs(): number {
    return this.quorumWindowFor(this);
  }

  quorumWindowFor(timing: CoreTiming): number {
    return Math.max(timing.tickMs * timing.checkBeats, (1 + DEADLINE_GRACE_TICKS) * timing.tickMs);
  }
}
