/**
 * The term index (src/core/term-index.ts) a slave reads its claims from (following.ts): after
 * any sequence of changes it must hold exactly what a fresh look at every entry finds, in
 * term order, and nothing more (a forger's claims come and go; the index must not keep any).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../sim/random';
import { MAX_TERM, TERM_CEILING } from '../src/protocol/limits';
import { TermIndex } from '../src/core/term-index';

/** The entries of `terms`, highest term first; within a term, in the order the hostname took it. */
function expected(terms: Map<string, number>, took: Map<string, number>): Array<[string, number]> {
  return [...terms].sort((a, b) => b[1] - a[1] || (took.get(a[0]) as number) - (took.get(b[0]) as number));
}

describe('TermIndex', () => {
  test('after thousands of random sets and deletes, reads what a fresh linear scan finds', () => {
    let compared = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = new Random(seed);
      const index = new TermIndex();
      const terms = new Map<string, number>();
      /** When each hostname took its present term (a tie keeps that order). */
      const took = new Map<string, number>();
      const hostnames = Array.from({ length: 40 }, (_, i) => `h${i}`);
      // Few distinct terms (ties at the top are the case that matters) and the decoder's extremes.
      const pool = [0, 1, 2, 3, 65537, TERM_CEILING, TERM_CEILING + 1, MAX_TERM - 1, MAX_TERM];
      for (let i = 0; i < 2000; i++) {
        const hostname = r.pick(hostnames);
        if (r.chance(0.3)) {
          index.delete(hostname);
          terms.delete(hostname);
          took.delete(hostname);
        } else {
          const term = r.chance(0.7) ? r.pick(pool) : r.int(0, 100);
          index.set(hostname, term);
          if (terms.get(hostname) !== term) took.set(hostname, i);
          terms.set(hostname, term);
        }
        const want = expected(terms, took);
        assert.deepEqual([...index.descending()], want, `seed ${seed}, step ${i}`);
        assert.equal(index.size, terms.size);
        const limit = r.pick(pool);
        assert.deepEqual(
          index.upTo(limit).map(([h]) => h),
          [...terms]
            .filter(([, t]) => t <= limit)
            .sort((a, b) => a[1] - b[1] || (took.get(a[0]) as number) - (took.get(b[0]) as number))
            .map(([h]) => h),
          `seed ${seed}, step ${i}: up to ${limit}`,
        );
        for (const h of hostnames) assert.equal(index.termOf(h), terms.get(h));
        compared++;
      }
    }
    assert.equal(compared, 10 * 2000);
  });

  test('reading stops where the caller stops: the first two of a thousand cost two', () => {
    const index = new TermIndex();
    for (let i = 0; i < 1000; i++) index.set(`h${i}`, i % 10);
    let read = 0;
    const top: string[] = [];
    for (const [hostname] of index.descending()) {
      read++;
      top.push(hostname);
      if (top.length === 2) break;
    }
    assert.equal(read, 2);
    assert.deepEqual(top, ['h9', 'h19']);
  });

  test('keeps nothing of an entry once it is deleted, however many came and went', () => {
    const index = new TermIndex();
    for (let i = 0; i < 5000; i++) index.set(`zz${i}`, i);
    for (let i = 0; i < 5000; i++) index.delete(`zz${i}`);
    assert.equal(index.size, 0);
    assert.deepEqual([...index.descending()], []);
    assert.deepEqual(index.upTo(Infinity), []);
    index.set('a', 7);
    assert.deepEqual([...index.descending()], [['a', 7]]);
  });
});
