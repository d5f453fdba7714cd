/**
 * Freshness in authenticated clusters: which instances may speak, and the proof that a new
 * one is alive now.
 *
 * A MAC proves that a key holder made a packet, not when. Two rules close that gap:
 *  - an instance we know (by instance id) is heard only with a sequence number above the
 *    last one heard from it: a replayed or reordered packet of it is stale (except a
 *    promote or application message whose number a newer packet skipped: acted on once,
 *    within the challenge lifetime, since its sender's next heartbeat may overtake it);
 *  - an instance we do not know (a restart, a joiner, or a dead one whose captured packets
 *    are being replayed) is admitted only by a heartbeat that echoes one of our recent
 *    hellos as "<our iid>:<hello seq>". Our iid is random per process and the seq is ours,
 *    so that heartbeat was made after the hello was sent: its sender is alive now. A dead
 *    instance cannot answer, so replaying its packets, a second or a day later, admits nothing.
 *
 * Every map here is bounded: a flood of replays costs a fixed amount of memory and at most
 * a token-bucket's worth of challenges.
 */
import type { Message } from '../protocol/messages';
import { MAX_ECHOES } from '../protocol/limits';
import { SkippedSeqs } from '../elector/seq';

export type Verdict = 'ok' | 'stale' | 'unverified';

interface Challenge {
  at: number;
  /** The one instance asked to answer; undefined for the start hello, which everyone answers. */
  target: string | undefined;
  /** Start hello only: instances it already admitted (each echo admits its sender once). */
  admitted: Set<string> | null;
}

export interface FreshnessOptions {
  selfIid: string;
  /** Instances remembered (least recently heard forgotten first). */
  capacity: number;
}

/** Challenges in flight, and instances they may wait on; the oldest go first. */
const MAX_CHALLENGES = 256;
/** Challenges allowed in a burst, and refilled per second: bounds what a replay flood makes us send. */
const CHALLENGE_BURST = 128;
const CHALLENGE_REFILL_PER_S = 64;

export class FreshnessGuard {
  readonly #selfIid: string;
  readonly #capacity: number;
  /** "<iid> <hostname>" → highest seq heard; Map order is least recently heard first. */
  #known = new Map<string, number>();
  /** Per known instance, seqs a newer packet skipped over (see skipped.ts). */
  #skipped = new Map<string, SkippedSeqs>();
  /** Our hellos awaiting echoes, by seq, oldest first. */
  #challenges = new Map<number, Challenge>();
  /** Target iid → when it was last challenged, oldest first. */
  #lastChallenged = new Map<string, number>();
  /** Echo entries for the next heartbeat we send. */
  #echoes: string[] = [];
  #tokens = CHALLENGE_BURST;
  #tokensAt = -Infinity;

  constructor(options: FreshnessOptions) {
    this.#selfIid = options.selfIid;
    this.#capacity = Math.max(1, options.capacity);
  }

  /** Instances remembered (for diagnostics and the fuzzer's memory bound). */
  get size(): number {
    return this.#known.size;
  }

  /**
   * May this message (already authenticated, with iid and seq) be acted on? A heartbeat
   * that echoes a live challenge of ours admits an unknown instance.
   */
  admit(message: Message, now: number, ttlMs: number): Verdict {
    const iid = message.iid as string;
    const seq = message.seq as number;
    const key = `${iid} ${message.hostname}`;
    const last = this.#known.get(key);
    if (last !== undefined) {
      if (seq <= last) return this.#lateCommand(key, message, now) ? 'ok' : 'stale';
      if (seq > last + 1) {
        let skipped = this.#skipped.get(key);
        if (!skipped) this.#skipped.set(key, (skipped = new SkippedSeqs()));
        skipped.note(last, seq, now, now + ttlMs);
      }
      this.#remember(key, seq);
      return 'ok';
    }
    if (message.action !== 'heartbeat' || !message.echo) return 'unverified';
    for (const entry of message.echo) {
      const colon = entry.indexOf(':');
      if (entry.slice(0, colon) !== this.#selfIid) continue;
      const challengeSeq = Number(entry.slice(colon + 1));
      const challenge = this.#challenges.get(challengeSeq);
      if (!challenge || now - challenge.at > ttlMs) continue;
      if (challenge.target !== undefined) {
        if (challenge.target !== iid) continue;
        this.#challenges.delete(challengeSeq);
      } else {
        if (challenge.admitted?.has(key)) continue;
        challenge.admitted?.add(key);
      }
      this.#lastChallenged.delete(iid);
      this.#remember(key, seq);
      return 'ok';
    }
    return 'unverified';
  }

  /** Should we challenge `iid` now? At most once per `retryMs` each, and within the bucket. */
  shouldChallenge(iid: string, now: number, retryMs: number): boolean {
    const last = this.#lastChallenged.get(iid);
    if (last !== undefined && now - last < retryMs) return false;
    this.#tokens = Math.min(CHALLENGE_BURST, this.#tokens + ((now - this.#tokensAt) / 1000) * CHALLENGE_REFILL_PER_S);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  /** We sent hello `seq` (to `target`, or to everyone); echoes of it admit until `ttlMs` passes. */
  issued(seq: number, target: string | undefined, now: number, ttlMs: number): void {
    for (const [oldSeq, challenge] of this.#challenges) {
      if (now - challenge.at <= ttlMs && this.#challenges.size < MAX_CHALLENGES) break;
      this.#challenges.delete(oldSeq);
    }
    this.#challenges.set(seq, { at: now, target, admitted: target === undefined ? new Set() : null });
    if (target !== undefined) {
      this.#lastChallenged.delete(target);
      if (this.#lastChallenged.size >= MAX_CHALLENGES) this.#lastChallenged.delete(this.#lastChallenged.keys().next().value as string);
      this.#lastChallenged.set(target, now);
    }
  }

  /** We answer hello `seq` of `iid`: our next heartbeat echoes it. */
  answer(iid: string, seq: number): void {
    const entry = `${iid}:${seq}`;
    if (this.#echoes.includes(entry)) return;
    // Keep the newest: an older asker re-challenges, a newer one may be a restart waiting.
    if (this.#echoes.length >= MAX_ECHOES) this.#echoes.shift();
    this.#echoes.push(entry);
  }

  /** The echo entries for the heartbeat being sent now (undefined when there are none). */
  takeEchoes(): string[] | undefined {
    if (this.#echoes.length === 0) return undefined;
    const echoes = this.#echoes;
    this.#echoes = [];
    return echoes;
  }

  #remember(key: string, seq: number): void {
    this.#known.delete(key);
    if (this.#known.size >= this.#capacity) {
      const oldest = this.#known.keys().next().value as string;
      this.#known.delete(oldest);
      this.#skipped.delete(oldest);
    }
    this.#known.set(key, seq);
  }

  /** A command we skipped over and never saw, still within its deadline: admitted once. */
  #lateCommand(key: string, message: Message, now: number): boolean {
    if (message.action !== 'promote' && message.action !== 'message') return false;
    return this.#skipped.get(key)?.take(message.seq as number, now) ?? false;
  }
}
