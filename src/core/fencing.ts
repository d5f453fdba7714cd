/**
 * The term, the fencing token (SPEC §7), as one server keeps it:
 *
 *  - the highest term seen or held (`term`), adopted from what we hear within bounds past the
 *    ceiling (`noteTerm`); the term we serve under while master (`held`) and the last we
 *    claimed (`lastClaimed`), each new claim in our own slot (slots.ts);
 *  - the highest term of a master we held or followed: a later claim below it is not agreed
 *    to at once (`withholding`), so the cluster never agrees on a lower term than one a store
 *    may have seen;
 *  - as master, a higher term heard with no rival to explain it: claim again above it, at once
 *    when a server that follows no other master told us of it, else a tick later (`reclaim`).
 *
 * Apart from roles.ts because these are the rules of one number, however the role changes:
 * roles.ts decides the role and asks here which term it takes, and whether a claim waits.
 */
import type { Checkpoint, HeartbeatMessage } from '../protocol/messages';
import { MAX_TERM, MAX_TERM_CATCHUP_PER_S, MAX_TERM_STEP, TERM_CEILING } from '../protocol/limits';
import { nextTerm } from '../protocol/terms';
import type { Instant } from '../elector/types';
import { TermSlots } from './slots';
import type { Timing } from './timing';

export class FencingTerms {
  readonly #timing: Timing;
  /** The highest term we have seen or held: the next claim goes above it. */
  term = 0;
  /** The term we claimed and serve under while master (0 otherwise): the fencing token. */
  held = 0;
  /** The last term we claimed (kept after we step down). */
  lastClaimed = 0;
  /** The slot our claims are in (slots.ts). */
  readonly #slots: TermSlots;
  /** As master: when we first saw a term above ours with no rival to explain it (null: none). */
  #higherSince: number | null = null;
  /**
   * As master: a server that follows no master (or follows us) told us of a term above ours.
   * No rival's word can be on its way to explain it, and that server may be withholding its
   * agreement from our claim until we claim above it (`withholding`): claim at once.
   */
  #higherUnexplained = false;
  /** When we last claimed above a term on that at once (once a tick at most). */
  #unexplainedClaimAt = -Infinity;
  /**
   * The highest term of a master we held or followed (at most the term we adopted): a claim
   * below it would leave us agreed on a lower term than one a fencing store may have seen.
   */
  masterTerm = 0;
  /** The claimant we withhold our agreement from, and since when (null: none). */
  #withheld: { hostname: string; since: number } | null = null;
  /**
   * The master we follow: since when, its term then, and ours then (at least the ceiling).
   * Its term past the ceiling is trusted by time followed, not per packet (see noteTerm).
   */
  #followed: { hostname: string; since: number; term: number; base: number } | null = null;

  constructor(hostname: string, timing: Timing) {
    this.#slots = new TermSlots(hostname);
    this.#timing = timing;
  }

  /** The slot our next claim is in. */
  get slot(): number {
    return this.#slots.slot;
  }

  /** We heard of a server called `hostname`: our claims avoid its slot from now on. */
  noteHostname(hostname: string): void {
    this.#slots.note(hostname);
  }

  /** The term a new claim of ours takes (in our slot: no server that claims without hearing us can take the same number). */
  get next(): number {
    return nextTerm(this.term, this.slot);
  }

  /** We claim `term` (at least above what we have seen) and serve under it. */
  claim(term: number): void {
    this.held = term;
    this.lastClaimed = term;
    this.term = Math.max(this.term, term);
    this.noteMasterTerm(term);
  }

  /** We are master no more. */
  relinquished(): void {
    this.noteMasterTerm(this.held);
    this.held = 0;
  }

  /** We follow `hostname` (or nobody, '') from `now`, its term then being `term` (undefined: unknown). */
  follow(hostname: string, now: Instant | undefined, term: number | undefined): void {
    this.#followed = now && term !== undefined ? { hostname, since: now.mono, term, base: Math.max(this.term, TERM_CEILING) } : null;
  }

  /**
   * Terms only grow. A term heard is adopted as it is up to TERM_CEILING; past it (only a
   * forged packet gets there first) by at most MAX_TERM_STEP a packet, and towards the
   * term the master we follow had when we began to follow it by MAX_TERM_CATCHUP_PER_S
   * per second since. Per packet alone, a server that missed a flood of forged terms would
   * lag the servers that heard it by as many steps as it missed packets, and if it claimed
   * next its term would be below the last master's. By time followed, it catches up within
   * moments, while a forger would have to be followed as master for years to use up the
   * space. Every term we may then send is one every server accepts.
   */
  noteTerm(message: HeartbeatMessage, now: Instant, weAreMaster: boolean, self: string): void {
    if (message.term === undefined) return;
    let term = this.#bounded(message.term);
    const followed = this.#followed;
    if (followed && message.master && message.hostname === followed.hostname && message.term > term) {
      const allowed = followed.base + MAX_TERM_STEP + Math.floor((MAX_TERM_CATCHUP_PER_S * Math.max(0, now.mono - followed.since)) / 1000);
      term = Math.max(term, Math.min(followed.term, message.term, allowed, MAX_TERM));
    }
    if (term > this.term) this.term = term;
    // A server that follows no master, or us, and knows a term above ours: none of our rivals'
    // words is coming to explain it (#higherSince waits for those).
    if (weAreMaster && !message.master && term > this.held && (message.lead === undefined || message.lead.h === self))
      this.#higherUnexplained = true;
  }

  #bounded(heard: number): number {
    if (heard <= TERM_CEILING) return heard;
    return Math.min(heard, Math.max(this.term, TERM_CEILING) + MAX_TERM_STEP, MAX_TERM);
  }

  /**
   * Does a checkpoint from the master we follow (or from our master as it hands off) replace
   * `mine`? When it is newer, and only when its term is one we hold: a checkpoint from a
   * stranger that is not our master is never taken, and one stamped with a term beyond ours
   * could never be replaced by a real master's.
   */
  replaces(ckpt: Checkpoint, mine: Checkpoint | null): boolean {
    if (ckpt.t > this.term) return false;
    return !mine || ckpt.t > mine.t || (ckpt.t === mine.t && ckpt.v > mine.v);
  }

  /** The term of a master we hold or follow: a later claim below it is not agreed to at once. */
  noteMasterTerm(term: number): void {
    // Never above what we adopted ourselves (bounded past the ceiling, noteTerm): a claimant
    // claims above the term it heard, bounded the same way, and must be able to get there.
    const bounded = Math.min(term, this.term);
    if (bounded > this.masterTerm) this.masterTerm = bounded;
  }

  /**
   * As master with no rival in sight: why to claim again above a higher term now (null: not
   * now). Not at once unless a server that follows no other master told us of it: when that
   * master is alive beyond a server we do not hear, its followers' word names it within a
   * tick, and the conflict is settled by rank; claiming first made each of two such masters
   * outbid the other once a tick.
   */
  reclaim(now: Instant): string | null {
    const tick = this.#timing.tickMs;
    const unexplained = this.#higherUnexplained;
    this.#higherUnexplained = false;
    if (this.term <= this.held) this.#higherSince = null;
    else if (unexplained && now.mono >= this.#unexplainedClaimAt + tick) {
      this.#higherSince = null;
      this.#unexplainedClaimAt = now.mono;
      return 'a server that follows no other master knows a higher term';
    } else if (this.#higherSince === null) this.#higherSince = now.mono;
    else if (now.mono >= this.#higherSince + tick) {
      this.#higherSince = null;
      return 'a higher term was claimed elsewhere';
    }
    return null;
  }

  /** As master facing a rival: its term is explained, and the conflict decides. */
  facingRival(): void {
    this.#higherSince = null;
    this.#higherUnexplained = false;
  }

  /**
   * Do we withhold our agreement from `claimant`, the one claimant, claiming `term`? 'new': we
   * begin to now; 'yes': we go on; 'no': we follow it. Below the term of a master we held or
   * followed, it claimed from an old view (woken from a stall, back from a partition) and has
   * not heard that term: following it would leave the cluster agreed on a lower term than a
   * fencing store may hold. It claims above as soon as it hears our term (SPEC §7.2, §7.5). A
   * claimant that sends no term (the original package), and one that never claims above within
   * the wait (a one-way cut: it cannot hear our term) are followed as before.
   */
  withholding(claimant: string, term: number, now: Instant): 'new' | 'yes' | 'no' {
    // Past the ceiling only forged terms go, and a claimant's own term catches up with them
    // over time (noteTerm), not at one claim: waiting for it would hold no master for long.
    if (term <= 0 || term >= this.masterTerm || this.masterTerm > TERM_CEILING) return 'no';
    const withheld = this.#withheld;
    if (withheld === null || withheld.hostname !== claimant) {
      this.#withheld = { hostname: claimant, since: now.mono };
      return 'new';
    }
    return now.mono >= withheld.since + this.#withholdMs ? 'no' : 'yes';
  }

  /** We withhold our agreement from nobody. */
  agree(): void {
    this.#withheld = null;
  }

  /**
   * How long we withhold agreement from a claim below masterTerm: long enough for our term
   * to reach the claimant through a server between us (its next heartbeat, a tick), and for a
   * claimant that hears it only from a follower of its own to wait its tick (SPEC §7.5).
   */
  get #withholdMs(): number {
    const timing = this.#timing;
    return timing.tockMs + timing.tickMs;
  }

  /** When a higher term waited for its rival long enough, or we stop withholding our agreement (Infinity: neither). */
  nextDeadline(weAreMaster: boolean): number {
    const higher = this.#higherSince !== null && weAreMaster ? this.#higherSince + this.#timing.tickMs : Infinity;
    const withheld = this.#withheld !== null && !weAreMaster ? this.#withheld.since + this.#withholdMs : Infinity;
    return Math.min(higher, withheld);
  }
}
