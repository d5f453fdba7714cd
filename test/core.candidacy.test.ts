/**
 * Who may claim master, and who ranks first (src/core/candidacy.ts; SPEC §4, §6), driven with
 * explicit instants on the core's own parts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Candidacy, type Candidate } from '../src/core/candidacy';
import type { ServerRecord } from '../src/elector/types';
import { MAX_TERM } from '../src/protocol/limits';
import { termSlot } from '../src/protocol/terms';
import { at, coreParts, hear, TOCK } from './helpers/core-parts';

function candidate(hostname: string, changes: Partial<Candidate> = {}): Candidate {
  const self = { hostname, eligible: true, priority: 0 } as ServerRecord;
  return { hostname, priority: 0, self, settled: true, stopped: false, master: false, term: 0, slot: termSlot(hostname), ...changes };
}

describe('Candidacy', () => {
  test('claims only when no live eligible peer ranks before us: higher priority, then the hostname that sorts first', () => {
    const parts = coreParts('b');
    const me = candidate('b');
    const rules = new Candidacy(me, parts);
    assert.equal(rules.mayClaim(at(0)), true, 'alone');
    hear(parts, 'c', at(0));
    assert.equal(rules.mayClaim(at(0)), true, 'c sorts after b');
    hear(parts, 'a', at(0));
    assert.equal(rules.mayClaim(at(0)), false, 'a sorts first');
    assert.equal(rules.bestPeer(at(0)), 'a');
    hear(parts, 'a', at(1), { eligible: false });
    assert.equal(rules.mayClaim(at(1)), true, 'an ineligible peer is passed over');
    hear(parts, 'c', at(2), { prio: 5 });
    assert.equal(rules.mayClaim(at(2)), false, 'c has the higher priority');
    assert.equal(rules.bestPeer(at(2)), 'c');
    assert.ok(rules.compare('c', 'a') < 0 && rules.compare('a', 'b') < 0);
    // Past its deadline c no longer counts, though nobody removed it yet.
    assert.equal(rules.mayClaim(at(2 + parts.timing.deadAfterMs)), true);
  });

  test('never before it has settled, when stopped, when ineligible, or with no term left to take', () => {
    const parts = coreParts('b');
    for (const changes of [{ settled: false }, { stopped: true }, { term: MAX_TERM }] as Array<Partial<Candidate>>) {
      const rules = new Candidacy(candidate('b', changes), parts);
      assert.equal(rules.mayClaim(at(0)), false, JSON.stringify(changes));
    }
    const me = candidate('b');
    me.self.eligible = false;
    assert.equal(new Candidacy(me, parts).mayClaim(at(0)), false, 'ineligible');
    assert.equal(new Candidacy(me, parts).mayClaimPromoted(at(0)), false, 'ineligible, promoted');
  });

  test('without a quorum nobody claims, first in rank or promoted', () => {
    const parts = coreParts('a', 2);
    const rules = new Candidacy(candidate('a'), parts);
    assert.equal(rules.mayClaim(at(0)), false);
    assert.equal(rules.mayClaimPromoted(at(0)), false);
    hear(parts, 'z', at(0));
    assert.equal(rules.mayClaim(at(0)), true);
  });

  test("a handoff's target claims whatever its rank, and nobody else does while the target lives", () => {
    const parts = coreParts('b');
    hear(parts, 'a', at(0));
    hear(parts, 'c', at(0));
    parts.handoffs.begin('c', TOCK, true, 7);
    assert.equal(new Candidacy(candidate('c'), coreParts('c')).mayClaim(at(0)), true, 'no handoff known: c ranks after nobody');
    const target = coreParts('c');
    hear(target, 'a', at(0));
    target.handoffs.begin('c', TOCK, true, 7);
    assert.equal(new Candidacy(candidate('c'), target).mayClaim(at(0)), true, 'the target, though a ranks first');
    const b = new Candidacy(candidate('b'), parts);
    assert.equal(b.mayClaim(at(0)), false, 'b waits for c');
    assert.equal(b.mayClaimPromoted(at(0)), false, 'a promote() does not claim beside a handoff in flight');
    assert.equal(new Candidacy(candidate('b'), parts).mayClaim(at(TOCK)), false, 'after it, a ranks first again');
  });

  test('promote() may claim though it ranks later and has not listened', () => {
    const parts = coreParts('b');
    hear(parts, 'a', at(0));
    const rules = new Candidacy(candidate('b', { settled: false }), parts);
    assert.equal(rules.mayClaim(at(0)), false);
    assert.equal(rules.mayClaimPromoted(at(0)), true);
  });
});
