/**
 * The peers whose last heartbeat claimed master, and which of them are live: what every step
 * of the election reads first (SPEC 4.1: exactly one live claimant is the master).
 *
 * Apart from the member table because a forger can claim under as many hostnames as the table
 * holds, and a step must not then cost a walk over every claimant: the live ones are kept
 * between steps, and the claims are indexed by term (term-index.ts), both for the claimants
 * and for the rows that show master, which a slave marks as superseded (following.ts). The
 * table tells this module of every claim begun or ended, hearing, departure and removal.
 */
import type { Instant } from '../elector/types';
import type { Peer } from './peer';
import { TermIndex } from './term-index';

export class Claimants {
  readonly #peers: ReadonlyMap<string, Peer>;
  /** The span every peer is judged by when there is one lane (NaN: several). */
  readonly #uniformDeadAfter: () => number;
  /** Peers whose last heartbeat claimed master (live or not): the candidates for `live`. */
  readonly #claiming = new Set<string>();
  /**
   * `live` as last worked out, and what it holds for. A claimant's liveness depends on its
   * last hearing and its lane's span alone, so it holds while no claim began or ended and no
   * claimant was heard earlier than before or came back from the dead (`#version`), there is
   * one lane and its span is the same, and the earliest deadline of those listed (`until`) is
   * still ahead.
   */
  #live: { list: readonly string[]; version: number; at: number; until: number; deadAfter: number } | null = null;
  #version = 0;
  /** The claimants by the term their record shows. */
  readonly byTerm = new TermIndex();
  /** The peers whose record shows them as master (a claimant, unless marked superseded), by term. */
  readonly shown = new TermIndex();

  constructor(peers: ReadonlyMap<string, Peer>, uniformDeadAfter: () => number) {
    this.#peers = peers;
    this.#uniformDeadAfter = uniformDeadAfter;
  }

  /** After `peer`'s record changed: whether it claims now, its term, and whether its row shows master. */
  note(hostname: string, peer: Peer, claims: boolean): void {
    const claiming = this.#claiming;
    if (claims !== claiming.has(hostname)) {
      if (claims) claiming.add(hostname);
      else claiming.delete(hostname);
      this.#version++;
    }
    if (claims) this.byTerm.set(hostname, peer.record.term);
    else this.byTerm.delete(hostname);
    this.#show(hostname, peer);
  }

  /** Its row shows master, or does not (a claim superseded by a newer one, or the master we follow). */
  show(hostname: string, peer: Peer, master: boolean): void {
    peer.record.master = master;
    this.#show(hostname, peer);
  }

  #show(hostname: string, peer: Peer): void {
    if (peer.record.master) this.shown.set(hostname, peer.record.term);
    else this.shown.delete(hostname);
  }

  /** `peer` is heard at `heardAt`: what was kept no longer holds if that is earlier than before, or it was not listed live. */
  heard(hostname: string, peer: Peer, heardAt: number): void {
    if (this.#claiming.has(hostname) && !(heardAt >= peer.lastHeard && this.#listedLive(peer))) this.#version++;
  }

  /** A claimant's last hearing moved back (it left while locked). */
  movedBack(hostname: string): void {
    if (this.#claiming.has(hostname)) this.#version++;
  }

  removed(hostname: string): void {
    if (this.#claiming.delete(hostname)) this.#version++;
    this.byTerm.delete(hostname);
    this.shown.delete(hostname);
  }

  /** Peers whose record shows them as master now (what the application's `servers` shows). */
  shownMasters(): string[] {
    const shown: string[] = [];
    for (const hostname of this.#claiming) if (this.#peers.get(hostname)?.record.master) shown.push(hostname);
    return shown;
  }

  /** Live peers whose last heartbeat claims master, in the order their claims began (a new array: the caller may change it). */
  live(now: Instant): string[] {
    if (this.#claiming.size === 0) return [];
    const deadAfter = this.#uniformDeadAfter();
    const live = this.#live;
    if (live && live.version === this.#version && live.deadAfter === deadAfter && now.mono >= live.at && now.mono < live.until)
      return live.list.slice();
    const claimants: string[] = [];
    let until = Infinity;
    for (const hostname of this.#claiming) {
      const peer = this.#peers.get(hostname);
      if (!peer) continue;
      const deadline = peer.lastHeard + peer.lane.deadAfterMs;
      if (now.mono < deadline) {
        claimants.push(hostname);
        if (deadline < until) until = deadline;
      }
    }
    this.#live = Number.isNaN(deadAfter) ? null : { list: claimants, version: this.#version, at: now.mono, until, deadAfter };
    return claimants.slice();
  }

  /** Listed live by the kept `live` (heard later, it stays live at least as long). */
  #listedLive(peer: Peer): boolean {
    const live = this.#live;
    return live !== null && live.version === this.#version && peer.lastHeard + live.deadAfter > live.at;
  }

  /** Is `hostname` among `live(now)`? */
  isLive(hostname: string, now: Instant): boolean {
    if (!this.#claiming.has(hostname)) return false;
    const peer = this.#peers.get(hostname);
    return peer !== undefined && now.mono < peer.lastHeard + peer.lane.deadAfterMs;
  }
}
