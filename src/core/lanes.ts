/**
 * Lanes: peers judged by one timing, each kept in the order last heard.
 */
import { DEADLINE_GRACE_TICKS } from './timing';

/**
 * Peers judged by the same timing. Every peer is judged by our own config (the local
 * lane), except right after a reload of our timing: the peers we knew keep the deadline of
 * the timing before (a frozen lane) until they are heard again, so a reload to a shorter
 * heartbeat removes nobody who was live by the old one. Within a lane every peer dies the
 * same time after it was last heard, so heard order is deadline order.
 *
 * A peer's own timing is not believed for its deadline: without a secret anyone can send a
 * heartbeat that promises a day, and its claim to master would outlive the forger by that
 * long. A server configured slower than its peers paces its heartbeats to the fastest of
 * them instead (see `fastestTick`), so it is never judged too slow.
 */
export class Lane<P> {
  readonly peers = new Map<string, P>();
  constructor(
    readonly key: string,
    readonly timing: { readonly tickMs: number; readonly checkBeats: number },
  ) {}

  get tickMs(): number {
    return this.timing.tickMs;
  }
  get tockMs(): number {
    return this.timing.tickMs * this.timing.checkBeats;
  }
  /** Silent this long, a peer of this lane is dead: its tock plus a quarter tick. */
  get deadAfterMs(): number {
    return this.timing.tickMs * (this.timing.checkBeats + DEADLINE_GRACE_TICKS);
  }
  /** A tock; with check_beats 1, a quarter tick more (see Timing.quorumWindowMs). */
  get quorumWindowMs(): number {
    return Math.max(this.tockMs, (1 + DEADLINE_GRACE_TICKS) * this.timing.tickMs);
  }
}
