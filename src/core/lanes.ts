/**
 * Lanes: peers judged by one timing, each kept in the order last heard.
 */
import type { CoreTiming, Timing } from './timing';

/**
 * Peers judged by the same timing. Every peer is judged by our own config (the local
 * lane), except right after a reload of our timing: the peers we knew are judged by the
 * longer of the timing before and ours (a frozen lane) until they show that they keep our
 * pace, so a reload to a shorter heartbeat removes nobody who was live by the old one.
 * Within a lane every peer dies the same time after it was last heard, so heard order is
 * deadline order.
 *
 * A peer's own timing is not believed for its deadline: without a secret anyone can send a
 * heartbeat that promises a day, and its claim to master would outlive the forger by that
 * long. A server configured slower than its peers paces its heartbeats to the fastest of
 * them instead (see `fastestTick`), so it is never judged too slow.
 */
export class Lane<P> {
  readonly peers = new Map<string, P>();
  /**
   * `frozen`: the timing before a reload, for a frozen lane (null: the local lane, judged by
   * `shared` alone). A frozen lane is never stricter than ours: after a reload to a longer
   * heartbeat the peers are judged by the new timing at once.
   */
  constructor(
    readonly key: string,
    readonly shared: Timing,
    readonly frozen: CoreTiming | null = null,
  ) {}

  get tickMs(): number {
    const frozen = this.frozen;
    return frozen ? Math.max(frozen.tickMs, this.shared.tickMs) : this.shared.tickMs;
  }
  get tockMs(): number {
    const frozen = this.frozen;
    const tock = this.shared.tockMs;
    return frozen ? Math.max(frozen.tickMs * frozen.checkBeats, tock) : tock;
  }
  /** Silent this long, a peer of this lane is dead: its tock plus the grace. */
  get deadAfterMs(): number {
    const frozen = this.frozen;
    const shared = this.shared;
    return frozen ? Math.max(shared.deadAfterFor(frozen), shared.deadAfterMs) : shared.deadAfterMs;
  }
  /** A tock; with check_beats 1, a quarter tick more (see Timing.quorumWindowMs). */
  get quorumWindowMs(): number {
    const frozen = this.frozen;
    const shared = this.shared;
    return frozen ? Math.max(shared.quorumWindowFor(frozen), shared.quorumWindowMs) : shared.quorumWindowMs;
  }
}
