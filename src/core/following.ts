/**
 * Which of the live claimants a slave follows (SPEC §7.2, §9):
 *
 *  - during a handoff, only its target and claims newer than the master handing off: an
 *    older claim is one that master had superseded (its yield is still on its way);
 *  - of several, the one with the highest term when it is the only one: terms only grow with
 *    each new master, so the others are older claims about to end. In a handoff the new
 *    master's claim can overtake the old master's "I hand off" heartbeat on the way to a third
 *    server, which saw two masters at once for a moment. Equal terms (old servers send none)
 *    leave all of them: no master until they settle;
 *  - a claim not followed is shown as what it is about to be: its row shows `master: false`,
 *    so no reader of `servers` sees two masters either.
 *
 * Masters do not come here: they see every rival, and conflicts are resolved by rank
 * (roles.ts). A claim's term is its followers' word when that is fresher than our own hearing
 * (words.ts), else its record's. Apart from roles.ts because of a forger: it can claim under
 * as many hostnames as the table holds, and reading every claimant's term on every step made
 * a step cost as much. The table indexes the claims by term (claimants.ts), so a step reads
 * the two highest, the few told by words, and the rows still shown as master (each claim is
 * marked once, when it is superseded).
 */
import type { Instant } from '../elector/types';
import type { Handoffs } from './handoff';
import type { MemberTable } from './members';
import type { Words } from './words';

/** The claimants a slave follows: none, one (`only`), or several (`count` 2: no master until they settle). */
export interface Choice {
  count: 0 | 1 | 2;
  only: string | undefined;
}

const NONE: Choice = Object.freeze({ count: 0, only: undefined });
const SEVERAL: Choice = Object.freeze({ count: 2, only: undefined });

/** What a list of claims leaves to follow as it is (a master's rivals, once it is master no more). */
export function choiceOf(claims: readonly string[]): Choice {
  if (claims.length > 1) return SEVERAL;
  return claims.length === 1 ? { count: 1, only: claims[0] } : NONE;
}

export class Following {
  readonly #members: MemberTable;
  readonly #words: Words;
  readonly #handoffs: Handoffs;

  constructor(members: MemberTable, words: Words, handoffs: Handoffs) {
    this.#members = members;
    this.#words = words;
    this.#handoffs = handoffs;
  }

  choose(now: Instant): Choice {
    const members = this.#members;
    const alone = this.#words.alone(now);
    const handoff = this.#handoffs.filtering(now);
    const claims = members.claimants.byTerm;
    if (handoff === null && alone.size === 0 && claims.size <= 1) {
      // One claim at most (a cluster at rest): nothing to compare, nothing to show superseded,
      // so no term to read.
      const only = claims.first();
      return only && members.isLiveClaimant(only[0], now) ? { count: 1, only: only[0] } : NONE;
    }
    const told = this.#words.told(alone, now);
    const floor = handoff ? handoff.term : -Infinity;
    const target = handoff?.target;
    // The claims to follow with the highest terms: two from the table's index (a third can
    // change neither which is newest nor whether two tie), those whose term is the followers'
    // word, and the handoff's target whatever its term.
    const top: Array<[string, number]> = [];
    for (const entry of claims.descending()) {
      if (entry[1] <= floor) break;
      if (told.has(entry[0]) || !members.isLiveClaimant(entry[0], now)) continue;
      if (top.push(entry) === 2) break;
    }
    for (const entry of told) if (entry[1] > floor) top.push(entry);
    if (target !== undefined && !top.some(([hostname]) => hostname === target)) {
      const term = told.get(target) ?? (members.isLiveClaimant(target, now) ? members.get(target)?.record.term : undefined);
      if (term !== undefined) top.push([target, term]);
    }
    top.sort((a, b) => b[1] - a[1]);
    const newest = top[0];
    const second = top[1];
    if (newest !== undefined && second !== undefined && second[1] < newest[1]) {
      this.#supersede(Infinity, newest[0], told, now);
      return { count: 1, only: newest[0] };
    }
    if (handoff) this.#supersede(floor, target, told, now);
    if (newest === undefined) return NONE;
    return second === undefined ? { count: 1, only: newest[0] } : SEVERAL;
  }

  /** Show as superseded every claim to follow with a term of at most `limit`, `kept` aside. */
  #supersede(limit: number, kept: string | undefined, told: ReadonlyMap<string, number>, now: Instant): void {
    const members = this.#members;
    for (const [hostname] of members.claimants.shown.upTo(limit)) {
      if (hostname !== kept && !told.has(hostname) && members.isLiveClaimant(hostname, now)) members.showMaster(hostname, false);
    }
    for (const [hostname, term] of told) if (term <= limit && hostname !== kept) members.showMaster(hostname, false);
  }
}
