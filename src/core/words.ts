/**
 * What the followers' words (relays.ts) mean to us: which masters we count as live on them,
 * with which term and priority, and what we say in turn of the master we follow.
 *
 * A word counts only when it is fresher than our own last hearing of that master, by a
 * holdoff (the transit makes a word look a little fresher): a master that died was heard last
 * by all its followers at about the same time, and their words, as stale as ours, would keep
 * it alive for each other; a master we removed is not revived by a follower a little behind
 * us in removing it. A cut leaves us behind by a tick at every heartbeat, so there a word is
 * fresher. It also beats our own last hearing while that still counts (a long deadline after
 * a reload): the server became master after we stopped hearing it, say. It counts for a tock,
 * the grace and a tick per pass of the word (each server repeats it once a tick, and what it
 * heard is up to a tick old when it says it).
 */
import type { Lead } from '../protocol/messages';
import type { Instant } from '../elector/types';
import type { MemberTable } from './members';
import { MAX_HOPS, type Relays } from './relays';
import type { Timing } from './timing';

const NOBODY: ReadonlyMap<string, number> = new Map();

export class Words {
  readonly #self: string;
  readonly #relays: Relays;
  readonly #members: MemberTable;
  readonly #timing: Timing;
  /** The last evaluation kept a silent master, or followed one, on a word (see Roles.evaluate). */
  relying = false;

  constructor(self: string, relays: Relays, members: MemberTable, timing: Timing) {
    this.#self = self;
    this.#relays = relays;
    this.#members = members;
    this.#timing = timing;
  }

  /** Is `hostname` a live master on the followers' word? */
  says(hostname: string, now: Instant): boolean {
    const until = this.#until(hostname);
    return until !== null && now.mono < until;
  }

  /** Until when the followers' word keeps `hostname` a live master for us (null: it does not). */
  #until(hostname: string): number | null {
    const relays = this.#relays;
    const timing = this.#timing;
    const word = relays.word(hostname);
    if (!word) return null;
    const peer = this.#members.get(hostname);
    const heard = peer ? peer.lastHeard : relays.lastHeardBeforeRemoval(hostname);
    if (heard !== undefined && word.at <= heard + timing.holdoffMs) return null;
    const passes = word.hops + 1;
    return word.at + (peer ? peer.lane.deadAfterMs + passes * peer.lane.tickMs : timing.deadAfterMs + passes * timing.tickMs);
  }

  /** `direct` (`members.liveClaimants(now)`: live servers we hear claim master) and the masters live on the followers' word. */
  claimants(direct: string[], now: Instant): string[] {
    for (const lead of this.alone(now).keys()) direct.push(lead);
    return direct;
  }

  /**
   * The masters live on the followers' word alone (not live claimants we hear), with the
   * word's term. A live claimant is one we hear ourselves: a lookup, where `includes` over a
   * list cost O(leads × claimants) a step under a flood of forged claims and words.
   */
  alone(now: Instant): ReadonlyMap<string, number> {
    if (this.#relays.size === 0) return NOBODY;
    let alone: Map<string, number> | null = null;
    for (const [lead] of this.#relays.leads()) {
      if (lead === this.#self || this.#members.isLiveClaimant(lead, now) || !this.says(lead, now)) continue;
      (alone ??= new Map()).set(lead, this.#relays.word(lead)?.term ?? 0);
      this.relying = true;
    }
    return alone ?? NOBODY;
  }

  /**
   * Every claim whose term is the followers' word (see `termOf`), with it: `alone`, and the
   * live claimants we hear whose word is fresher than our own hearing.
   */
  told(alone: ReadonlyMap<string, number>, now: Instant): ReadonlyMap<string, number> {
    let told: Map<string, number> | null = null;
    for (const [lead] of this.#relays.leads()) {
      if (lead === this.#self || !this.#members.isLiveClaimant(lead, now) || !this.says(lead, now)) continue;
      (told ??= new Map(alone)).set(lead, this.#relays.word(lead)?.term ?? 0);
    }
    return told ?? alone;
  }

  /** The term a claimant claims: the freshest we know, its own or its followers'. */
  termOf(hostname: string, now: Instant): number {
    if (this.says(hostname, now)) return this.#relays.word(hostname)?.term ?? 0;
    return this.#members.get(hostname)?.record.term ?? 0;
  }

  /** The priority of a master we know only from its followers' word (0 when none says). */
  priorityOf(hostname: string): number {
    return this.#relays.word(hostname)?.priority ?? 0;
  }

  /**
   * What we say of `master`, which we follow: how long ago we heard it ourselves, or, following
   * it on another server's word, how old that word's evidence is (passed on only while MAX_HOPS
   * allows).
   */
  lead(master: string, now: Instant): Lead | undefined {
    const members = this.#members;
    const peer = members.get(master);
    let at: number;
    let term: number;
    let priority: number;
    let hops = 0;
    const word = this.says(master, now) ? this.#relays.word(master) : undefined;
    if (word && word.hops + 1 < MAX_HOPS) {
      at = word.at;
      term = word.term;
      priority = word.priority;
      hops = word.hops + 1;
    } else if (!word && peer && members.isLive(peer, now)) {
      // On our own hearing: its last word claimed master (its row may show false, superseded
      // for a moment by a newer claim that has since ended).
      at = peer.lastHeard;
      term = peer.record.term;
      priority = peer.record.priority;
    } else {
      return undefined;
    }
    const lead: Lead = { h: master, age: Math.min(86_400_000, Math.max(0, Math.round(now.mono - at))), t: term };
    if (priority !== 0) lead.p = priority;
    if (hops > 0) lead.n = hops;
    return lead;
  }

  /** When the first word we rely on runs out (Infinity: none; until we rely on one, a master's own deadline wakes us). */
  nextDeadline(now: Instant): number {
    if (!this.relying) return Infinity;
    let next = Infinity;
    for (const [lead] of this.#relays.leads()) {
      const until = this.#until(lead);
      if (until !== null && until > now.mono && until < next) next = until;
    }
    return next;
  }
}
