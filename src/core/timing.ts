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
 * The most a peer is given after its tock runs out before it is dead: a quarter tick. Without
 * a grace, losing check_beats - 1 heartbeats in a row would put the next one exactly on the
 * deadline and a little lateness would remove a live server; VRRP adds a "skew time" for the
 * same reason. The grace used is smaller on a quiet machine (see Timing.graceFor); this is
 * also the stall threshold with check_beats 1, and what an outside observer (the status CLI)
 * allows.
 */
export const DEADLINE_GRACE_TICKS = 0.25;

/**
 * The grace on a quiet machine: a peer's heartbeat may come this much after its tock (its
 * timers are late by a millisecond or two, the network's jitter a little less on a LAN). Then
 * it grows with this server's own timer lateness, measured by the driver (`tick(now, lateMs)`),
 * as Lifeguard's local health does: a server whose timers fire late is on a loaded machine,
 * where its peers' heartbeats are late too, and where a datagram can sit in its socket while
 * its timer runs. It grows too with how late peers' heartbeats arrive against the interval
 * they keep (`tick`, or `pace`): a loaded peer on a quiet machine shows its load that way.
 */
export const GRACE_FLOOR_MS = 10;
/** The grace is the floor plus this many times the recent peak of our own timer lateness. */
export const GRACE_PER_LATE_MS = 2;

/** Answers to `hello` are coalesced within this window so a flood of hellos cannot make us flood. */
const MAX_ANSWER_HOLDOFF_MS = 250;

export class Timing implements CoreTiming {
  tickMs: number;
  checkBeats: number;
  /** Our recent peak of timer lateness (ms), and when it was last updated (monotonic ms). */
  #latePeak = 0;
  #lateAt = -Infinity;

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
    return timing.tickMs * timing.checkBeats + this.graceFor(timing);
  }

  /**
   * The grace after a tock: the floor and twice the recent lateness, at most a quarter tick.
   * With check_beats 1 every heartbeat falls on the deadline, with none spare to lose: one
   * late by more than the grace removes its sender, and the first heartbeat of a sudden load
   * comes before any lateness was measured. There the grace stays a quarter tick. With
   * check_beats 2 or more a late heartbeat alone removes nobody (the deadline is a tock after
   * the one before it); only check_beats − 1 lost in a row and a late one after them do.
   */
  graceFor(timing: CoreTiming): number {
    const most = timing.tickMs * DEADLINE_GRACE_TICKS;
    return timing.checkBeats <= 1 ? most : Math.min(most, GRACE_FLOOR_MS + GRACE_PER_LATE_MS * this.#latePeak);
  }

  /**
   * The least time any peer waits for a silent master before replacing it: a tock and the
   * smallest grace a peer on a quiet machine gives. Our own grace cannot stand in for it: it
   * follows our lateness, and a stall is lateness, so it grows by the very silence it judges.
   */
  get leastPeerWaitMs(): number {
    const most = this.tickMs * DEADLINE_GRACE_TICKS;
    return this.tockMs + (this.checkBeats <= 1 ? most : Math.min(most, GRACE_FLOOR_MS));
  }

  /**
   * Late enough that a peer may have been judged dead, or judged us dead, meanwhile: a tick;
   * with check_beats 1 a quarter tick, the most grace anyone gives (see Announcer.checkStall).
   */
  get stallAfterMs(): number {
    return Math.min(this.tickMs, this.tockMs - this.tickMs + this.tickMs * DEADLINE_GRACE_TICKS);
  }

  /** The recent peak of lateness (our timers', and peers' heartbeats' as they arrive), ms. */
  get latePeakMs(): number {
    return this.#latePeak;
  }

  /**
   * A peer's heartbeat came `lateMs` after its interval (what the network and the peer's own
   * timers added). Only raises the peak (cheap, per heartbeat); it decays at our next tick.
   */
  notePeerLateness(lateMs: number): void {
    if (lateMs > this.#latePeak) this.#latePeak = lateMs;
  }

  /**
   * Our timer fired `lateMs` late at `now`. The peak decays by half every max(10 s, tock)
   * (a load spike keeps the grace up for a while, then it comes back down). Returns true when
   * the grace went down: deadlines moved earlier.
   */
  noteLateness(lateMs: number, now: number): boolean {
    const halfLife = Math.max(10_000, this.tockMs);
    const decayed = this.#latePeak > 0 && now > this.#lateAt ? this.#latePeak * 2 ** (-(now - this.#lateAt) / halfLife) : this.#latePeak;
    const peak = Math.max(decayed < 0.05 ? 0 : decayed, lateMs > 0 ? lateMs : 0);
    const lower = peak < this.#latePeak;
    this.#latePeak = peak;
    this.#lateAt = now;
    return lower;
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
