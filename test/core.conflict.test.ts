/**
 * Two masters (src/core/conflict.ts; SPEC §4.7, §7.3, §7.5): the one that ranks first keeps
 * the role and claims above its rival's term, unless that term is beyond what one packet may
 * raise ours by; the other relinquishes, or exits with exit_on_conflict.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Conflict, type Contender } from '../src/core/conflict';
import { compareRank } from '../src/elector/rank';
import { MAX_TERM_STEP, TERM_CEILING } from '../src/protocol/limits';
import { at, coreParts, hear } from './helpers/core-parts';

/** A contender that records what it is asked to do; `terms` are the rivals' claimed terms. */
function contender(hostname: string, terms: Record<string, number>, changes: Partial<Contender> = {}) {
  const asked: string[] = [];
  const me: Contender = {
    hostname,
    term: 10,
    held: 10,
    exitOnConflict: false,
    compare: (a, b) => compareRank(a, 0, b, 0),
    claimTerm: (h) => terms[h] ?? 0,
    heardThrough: () => '',
    claimAbove: (above, _now, why) => asked.push(`claim above ${above}: ${why}`),
    exit: (reason) => asked.push(`exit: ${reason}`),
    relinquish: (reason) => asked.push(`relinquish: ${reason}`),
    sendHeartbeat: () => asked.push('heartbeat'),
    ...changes,
  };
  return { me, asked };
}

describe('Conflict', () => {
  test('ranking first, we keep the role, claim above the highest rival term, and show the rivals as yielding', () => {
    const parts = coreParts('a');
    hear(parts, 'b', at(0), { master: true, term: 30 });
    hear(parts, 'c', at(0), { master: true, term: 20 });
    const { me, asked } = contender('a', { b: 30, c: 20 }, { held: 40 });
    const yielded = new Conflict(me, parts.step, parts.members).face(['c', 'b'], at(0));
    assert.equal(yielded, false);
    assert.deepEqual(asked, []);
    assert.deepEqual(
      [...parts.members.entries()].filter(([, p]) => p.record.master).map(([h]) => h),
      [],
      'both below our term: shown as about to yield',
    );
    const events = parts.step.take(Infinity).events;
    assert.deepEqual(events, [{ type: 'conflict', hostname: 'b' }]);
    const raised = contender('a', { b: 30, c: 20 });
    new Conflict(raised.me, parts.step, parts.members).face(['b', 'c'], at(0));
    assert.deepEqual(raised.asked, ['claim above 30: b claimed term 30']);
  });

  test('a rival term beyond what one packet may raise ours by is not outbid (a forgery must not ratchet us)', () => {
    const parts = coreParts('a');
    const forged = TERM_CEILING + 3 * MAX_TERM_STEP;
    const { me, asked } = contender('a', { b: forged, c: TERM_CEILING + 5 }, { term: TERM_CEILING, held: TERM_CEILING });
    new Conflict(me, parts.step, parts.members).face(['b', 'c'], at(0));
    assert.deepEqual(asked, [`claim above ${TERM_CEILING + 5}: b claimed term ${forged}`]);
    const alone = contender('a', { b: forged }, { term: TERM_CEILING, held: TERM_CEILING });
    new Conflict(alone.me, parts.step, parts.members).face(['b'], at(0));
    assert.deepEqual(alone.asked, [], 'no claim at all: the forged term alone is not outbid');
  });

  test('ranking later, we relinquish and say so at once; with exit_on_conflict we exit instead', () => {
    const parts = coreParts('b');
    const { me, asked } = contender('b', { a: 5 });
    assert.equal(new Conflict(me, parts.step, parts.members).face(['a'], at(0)), true);
    assert.deepEqual(asked, ['relinquish: master conflict with a', 'heartbeat']);
    const exiting = contender('b', { a: 5 }, { exitOnConflict: true });
    assert.equal(new Conflict(exiting.me, parts.step, parts.members).face(['a'], at(0)), false);
    assert.deepEqual(exiting.asked, ['exit: master conflict with a']);
  });
});
