/**
 * Who a unicast server sends to: a pure table (time is passed in) of peer addresses and
 * how each is known.
 *
 * - configured: from `peers` (IP literals, or the addresses a name resolved to). Always
 *   sent to, heard or not: a listed server that is down now may start later.
 * - heard: sent a heartbeat that decoded as valid (and, with a secret, authenticated).
 *   Only that makes an unlisted address a target: an arbitrary datagram must never make
 *   us send heartbeats somewhere (reflection).
 * - gossiped: named by a peer we trust (configured or heard) in its list of addresses it
 *   hears. Probed with our heartbeats until it answers; forgotten if it never does.
 *
 * Unlisted addresses are forgotten after `forgetAfterMs` of silence, and there are at
 * most `maxLearned` of them: a flood of spoofed heartbeats or gossip costs bounded memory
 * and bounded sending.
 */
import type { Address } from '../protocol/messages';
import { formatAddress } from '../protocol/address';

export interface PeerSetOptions {
  /** Our own addresses: never a target, never learned (a shared `peers` list names us too). */
  isSelf: (address: Address) => boolean;
  /** Most unlisted (heard or gossiped) addresses kept. */
  maxLearned: number;
  /** An unlisted address silent this long is dropped. */
  forgetAfterMs: number;
  /** An address heard within this long is live: it is what we gossip. */
  liveForMs: number;
}

interface Entry {
  address: Address;
  /** The `peers` entries that produced this address; empty when unlisted. */
  sources: Set<string>;
  /** Monotonic ms of the last valid heartbeat from it; -Infinity when never heard. */
  heardAt: number;
  /** Monotonic ms when it entered the table. */
  addedAt: number;
}

export class PeerSet {
  #options: PeerSetOptions;
  #entries = new Map<string, Entry>();
  #learned = 0;

  constructor(options: PeerSetOptions) {
    this.#options = { ...options };
  }

  setTiming(timing: { forgetAfterMs: number; liveForMs: number }): void {
    this.#options.forgetAfterMs = timing.forgetAfterMs;
    this.#options.liveForMs = timing.liveForMs;
  }

  /**
   * The addresses of one `peers` entry (an IP literal, or what its name resolved to),
   * replacing what that entry gave before. An address no longer listed stays as a
   * learned one if it was heard, so a name that moves does not cut off a live server.
   */
  setConfigured(source: string, addresses: readonly Address[], now: number): void {
    const keep = new Set<string>();
    for (const address of addresses) {
      if (this.#options.isSelf(address)) continue;
      const key = formatAddress(address);
      keep.add(key);
      const entry = this.#entries.get(key);
      if (!entry) {
        this.#entries.set(key, { address, sources: new Set([source]), heardAt: -Infinity, addedAt: now });
      } else if (!entry.sources.has(source)) {
        if (entry.sources.size === 0) this.#learned--;
        entry.sources.add(source);
      }
    }
    for (const [key, entry] of this.#entries) {
      if (keep.has(key) || !entry.sources.delete(source) || entry.sources.size > 0) continue;
      if (entry.heardAt === -Infinity || this.#learned >= this.#options.maxLearned) this.#entries.delete(key);
      else this.#learned++;
    }
  }

  /** Every `peers` entry that is configured now; for reload. */
  sources(): Set<string> {
    const sources = new Set<string>();
    for (const entry of this.#entries.values()) for (const source of entry.sources) sources.add(source);
    return sources;
  }

  /**
   * `address` sent a valid heartbeat. Returns true when it was not live before (new, or
   * back after a silence): then the others should hear of it.
   */
  learn(address: Address, now: number): boolean {
    if (this.#options.isSelf(address)) return false;
    const key = formatAddress(address);
    const entry = this.#entries.get(key);
    if (entry) {
      const wasLive = now - entry.heardAt <= this.#options.liveForMs;
      entry.heardAt = now;
      return !wasLive;
    }
    if (this.#learned >= this.#options.maxLearned && !this.#evictUnheard()) return false;
    this.#entries.set(key, { address, sources: new Set(), heardAt: now, addedAt: now });
    this.#learned++;
    return true;
  }

  /**
   * `from` says it hears `addresses`. Taken only from a peer we trust (listed, or heard
   * within the liveness window); new addresses are probed, never trusted in turn until
   * they send a valid heartbeat themselves. Returns the new ones.
   */
  gossip(from: Address, addresses: readonly Address[], now: number): Address[] {
    const added: Address[] = [];
    if (!this.trusts(from, now)) return added;
    for (const address of addresses) {
      if (this.#learned >= this.#options.maxLearned) break;
      const key = formatAddress(address);
      if (this.#entries.has(key) || this.#options.isSelf(address)) continue;
      this.#entries.set(key, { address, sources: new Set(), heardAt: -Infinity, addedAt: now });
      this.#learned++;
      added.push(address);
    }
    return added;
  }

  /** Whether gossip from `from` is taken: it is listed, or it sent a valid heartbeat lately. */
  trusts(from: Address, now: number): boolean {
    const entry = this.#entries.get(formatAddress(from));
    return !!entry && (entry.sources.size > 0 || now - entry.heardAt <= this.#options.liveForMs);
  }

  /** Where a datagram "to everyone" goes. Forgets unlisted addresses silent too long. */
  targets(now: number): Address[] {
    const targets: Address[] = [];
    for (const [key, entry] of this.#entries) {
      if (entry.sources.size === 0 && now - Math.max(entry.heardAt, entry.addedAt) > this.#options.forgetAfterMs) {
        this.#entries.delete(key);
        this.#learned--;
        continue;
      }
      targets.push(entry.address);
    }
    return targets;
  }

  /** Addresses heard lately, in canonical text: what we tell our peers. */
  live(now: number): string[] {
    const live: string[] = [];
    for (const [key, entry] of this.#entries) {
      if (now - entry.heardAt <= this.#options.liveForMs) live.push(key);
    }
    return live;
  }

  /** Every address in the table (listed, heard and gossiped), for diagnostics. */
  known(): string[] {
    return [...this.#entries.keys()];
  }

  /** Number of unlisted addresses held (bounded by maxLearned). */
  get learnedCount(): number {
    return this.#learned;
  }

  /** Make room for a heard address by dropping the oldest gossiped one never heard. */
  #evictUnheard(): boolean {
    for (const [key, entry] of this.#entries) {
      if (entry.sources.size === 0 && entry.heardAt === -Infinity) {
        this.#entries.delete(key);
        this.#learned--;
        return true;
      }
    }
    return false;
  }
}
