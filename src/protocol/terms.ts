/**
 * Terms (fencing tokens) that belong to one claimant.
 *
 * A store that fences writes compares one integer: it refuses a term below the highest it
 * has seen. That is safe only if no two servers are ever master with the same term. Terms
 * raised by one from the highest seen cannot promise it: two servers that claim without
 * hearing each other (the two sides of a partition, two claims crossing in flight) both take
 * the same next number. So every server claims only terms of its own residue class: term ≡
 * slot (mod TERM_SLOTS), the slot derived from its hostname. Two servers with different
 * slots can never claim the same term, whatever each has or has not heard.
 *
 * A slot is the hostname's hash, unless a server hears another whose hostname hashes to the
 * same slot: then it moves to the next of its own candidate slots that no server it has heard
 * hashes to (core/roles.ts). Two servers that have heard each other, even one way, then never
 * share a slot, except when both moved and their second choices meet (one chance in 65536);
 * two that never heard each other share one only if their hostnames hash alike (the same).
 * The hash is fixed forever: a change would let two versions in one cluster claim alike.
 */

import { hash32 } from './hash';

/** Terms are claimed in this many residue classes; a claim moves the term up by at most this much. */
export const TERM_SLOTS = 2 ** 16;

/** Candidate slots a server may move through to avoid the slots of servers it hears. */
export const SLOT_CANDIDATES = 8;

/** Candidate `k` (0: the hostname's own slot) of the slots `hostname` may claim terms in. */
export function termSlot(hostname: string, k = 0): number {
  return hash32(k === 0 ? hostname : `${hostname}\u0000${k}`) % TERM_SLOTS;
}

/** The smallest term above `above` in `slot`: what a server of that slot claims next. */
export function nextTerm(above: number, slot: number): number {
  const base = above - (above % TERM_SLOTS);
  const term = base + slot;
  return term > above ? term : term + TERM_SLOTS;
}

/** The slot a term was claimed in. */
export function slotOf(term: number): number {
  return term % TERM_SLOTS;
}
