/**
 * The timing each peer says it keeps, against ours: which peers are configured faster than
 * us (we pace our heartbeats to the fastest, within bounds), the operator's warning when a
 * peer's timing differs from ours, and whether a heartbeat shows its sender keeps our pace.
 *
 * Apart from the member table because none of it judges liveness: a peer's own timing is
 * never believed for its deadline (lanes.ts says why); it only tunes how often we speak.
 */
import type { HeartbeatMessage } from '../protocol/messages';
import type { Peer } from './peer';
import type { Step } from './step';
import type { Timing } from './timing';

/** A server paces its heartbeats up to this many times its own rate to match a faster peer, and no more. */
export const MAX_PACE_UP = 20;

export class PeerTiming {
  readonly #timing: Timing;
  readonly #step: Step;
  /** Peers that say they are configured for a shorter heartbeat interval than ours. */
  readonly #faster = new Set<Peer>();

  constructor(timing: Timing, step: Step) {
    this.#timing = timing;
    this.#step = step;
  }

  /**
   * The shortest heartbeat interval a peer configured faster than us says it keeps
   * (Infinity: none). A forger can say 10 ms: that speeds us up to MAX_PACE_UP times our
   * own rate at most, and only while its heartbeats keep it in the table.
   */
  fastestTick(): number {
    let fastest = Infinity;
    for (const peer of this.#faster) if (peer.tick < fastest) fastest = peer.tick;
    return fastest;
  }

  count(peer: Peer, tick: number): void {
    peer.tick = tick;
    if (tick > 0 && tick < this.#timing.tickMs) this.#faster.add(peer);
    else this.#faster.delete(peer);
  }

  /** Our own tick changed: who is faster than us changes too. */
  recount(peers: Iterable<Peer>): void {
    this.#faster.clear();
    for (const peer of peers) this.count(peer, peer.tick);
  }

  forget(peer: Peer): void {
    this.#faster.delete(peer);
  }

  /** Say once per peer and timing that a peer is configured with another timing than ours, and what follows. */
  note(hostname: string, peer: Peer, message: HeartbeatMessage): void {
    if (message.tick === undefined || message.beats === undefined) return;
    const ours = this.#timing;
    // Numbers, not a key string: this runs for every heartbeat.
    const noted = peer.timingNoted;
    if (noted.tick === message.tick && noted.beats === message.beats && noted.ourTick === ours.tickMs && noted.ourBeats === ours.checkBeats)
      return;
    peer.timingNoted = { tick: message.tick, beats: message.beats, ourTick: ours.tickMs, ourBeats: ours.checkBeats };
    if (message.tick === Math.round(ours.tickMs) && message.beats === ours.checkBeats) return;
    const pace =
      message.tick < ours.tickMs
        ? `; this server sends its heartbeats every ${Math.round(Math.max(message.tick, ours.tickMs / MAX_PACE_UP))} ms while ${hostname} is here`
        : '';
    this.#step.peerLog(
      3,
      `TIMING MISMATCH: server ${hostname} is configured for a heartbeat every ${message.tick} ms (check_beats ${message.beats}), this server for ${ours.tickMs} ms (check_beats ${ours.checkBeats})${pace}. Give every server the same heartbeat_freq and check_beats.`,
    );
  }

  /**
   * Does this heartbeat show that its sender sends at least as often as our tick? Its
   * interval is its `pace` when it paces to a faster peer, else its tick; a sender that says
   * neither (an original server) keeps no pace we could learn of, and is judged by ours at once.
   */
  keepsOurPace(message: HeartbeatMessage): boolean {
    const interval = message.pace ?? message.tick;
    return interval === undefined || interval <= Math.round(this.#timing.tickMs);
  }
}
