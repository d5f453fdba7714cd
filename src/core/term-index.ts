/**
 * Hostnames ordered by a term, kept as they change, so that the claims with the highest terms
 * (or those at or below a given term) are found without reading every claimant's term.
 *
 * A slave facing several claimants follows the one with the newest term and shows the others
 * as superseded (following.ts); with a flood of forged claims that read was a walk over
 * hundreds of claimants on every step. Here a step reads only the entries it needs: the
 * first two from the top, or those up to a term. A change costs a binary search and, when a
 * term is new or its last holder leaves, the move of the array of distinct terms (as
 * member-set.ts keeps its sorted list); the index holds nothing a table entry does not.
 */
import { lowerBound } from './sorted';

export class TermIndex {
  readonly #termOf = new Map<string, number>();
  readonly #byTerm = new Map<number, Set<string>>();
  /** The distinct terms held, ascending. */
  readonly #terms: number[] = [];

  get size(): number {
    return this.#termOf.size;
  }

  termOf(hostname: string): number | undefined {
    return this.#termOf.get(hostname);
  }

  set(hostname: string, term: number): void {
    const before = this.#termOf.get(hostname);
    if (before === term) return;
    if (before !== undefined) this.#leave(hostname, before);
    this.#termOf.set(hostname, term);
    let holders = this.#byTerm.get(term);
    if (!holders) {
      holders = new Set();
      this.#byTerm.set(term, holders);
      this.#terms.splice(this.#at(term), 0, term);
    }
    holders.add(hostname);
  }

  delete(hostname: string): void {
    const before = this.#termOf.get(hostname);
    if (before === undefined) return;
    this.#termOf.delete(hostname);
    this.#leave(hostname, before);
  }

  #leave(hostname: string, term: number): void {
    const holders = this.#byTerm.get(term) as Set<string>;
    holders.delete(hostname);
    if (holders.size > 0) return;
    this.#byTerm.delete(term);
    this.#terms.splice(this.#at(term), 1);
  }

  /** The position of `term` in the ascending terms, or where it would go. */
  #at(term: number): number {
    return lowerBound(this.#terms, term);
  }

  /** The entry with the highest term (the first to take it), if any. */
  first(): [string, number] | undefined {
    const term = this.#terms[this.#terms.length - 1];
    if (term === undefined) return undefined;
    return [(this.#byTerm.get(term) as Set<string>).values().next().value as string, term];
  }

  /** Every entry, highest term first (ties in the order they took the term); stop early at will. */
  *descending(): Generator<[string, number]> {
    const terms = this.#terms;
    for (let i = terms.length - 1; i >= 0; i--) {
      const term = terms[i] as number;
      for (const hostname of this.#byTerm.get(term) as Set<string>) yield [hostname, term];
    }
  }

  /** The entries with a term of at most `limit`, lowest first (a new array: the caller may change the index). */
  upTo(limit: number): Array<[string, number]> {
    const found: Array<[string, number]> = [];
    for (const term of this.#terms) {
      if (term > limit) break;
      for (const hostname of this.#byTerm.get(term) as Set<string>) found.push([hostname, term]);
    }
    return found;
  }
}
