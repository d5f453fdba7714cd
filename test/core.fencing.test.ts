/**
 * The term as one server keeps it (src/core/fencing.ts; SPEC §7), driven with explicit
 * instants: what is adopted from a packet, within which bounds past the ceiling; the term a
 * claim takes; how long a claim below a term we knew waits; when a master claims again above
 * a higher term; which checkpoint replaces ours.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FencingTerms } from '../src/core/fencing';
import { Timing } from '../src/core/timing';
import type { Instant } from '../src/elector/types';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { MAX_TERM, MAX_TERM_CATCHUP_PER_S, MAX_TERM_STEP, TERM_CEILING } from '../src/protocol/limits';
import { slotOf, termSlot, TERM_SLOTS } from '../src/protocol/terms';

const TICK = 1000;
const TOCK = 3000;
const at = (mono: number): Instant => ({ mono, wall: mono });

function terms(): FencingTerms {
  return new FencingTerms('self', new Timing({ tickMs: TICK, checkBeats: 3 }));
}

function heard(term: number, extra: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return { action: 'heartbeat', hostname: 'peer', ip: '127.0.0.1', master: false, eligible: true, uptime: 0, data: {}, term, ...extra };
}

describe('FencingTerms', () => {
  test('a term heard is adopted in full up to the ceiling, past it by at most MAX_TERM_STEP a packet, and never goes down', () => {
    const t = terms();
    t.noteTerm(heard(TERM_CEILING - 5), at(0), false, 'self');
    assert.equal(t.term, TERM_CEILING - 5);
    t.noteTerm(heard(7), at(0), false, 'self');
    assert.equal(t.term, TERM_CEILING - 5);
    t.noteTerm(heard(MAX_TERM), at(0), false, 'self');
    assert.equal(t.term, TERM_CEILING + MAX_TERM_STEP);
    t.noteTerm(heard(MAX_TERM), at(0), false, 'self');
    assert.equal(t.term, TERM_CEILING + 2 * MAX_TERM_STEP);
  });

  test('past the ceiling, the term of the master we follow is caught up with by time followed', () => {
    const t = terms();
    const theirs = TERM_CEILING + 10 * MAX_TERM_CATCHUP_PER_S;
    t.follow('m', at(0), theirs);
    t.noteTerm(heard(theirs, { hostname: 'm', master: true }), at(0), false, 'self');
    assert.equal(t.term, TERM_CEILING + MAX_TERM_STEP);
    t.noteTerm(heard(theirs, { hostname: 'm', master: true }), at(2000), false, 'self');
    assert.equal(t.term, TERM_CEILING + MAX_TERM_STEP + 2 * MAX_TERM_CATCHUP_PER_S);
    t.noteTerm(heard(theirs, { hostname: 'm', master: true }), at(20_000), false, 'self');
    assert.equal(t.term, theirs);
    // Another server's packet gets no such catch-up.
    const other = terms();
    other.follow('m', at(0), theirs);
    other.noteTerm(heard(theirs, { hostname: 'x', master: true }), at(20_000), false, 'self');
    assert.equal(other.term, TERM_CEILING + MAX_TERM_STEP);
  });

  test('a claim takes the least term of our slot above every term seen, and serves under it until relinquished', () => {
    const t = terms();
    t.noteTerm(heard(3 * TERM_SLOTS + 5), at(0), false, 'self');
    const next = t.next;
    assert.ok(next > 3 * TERM_SLOTS + 5 && next <= 3 * TERM_SLOTS + 5 + TERM_SLOTS);
    assert.equal(slotOf(next), termSlot('self'));
    t.claim(next);
    assert.deepEqual([t.held, t.lastClaimed, t.term], [next, next, next]);
    t.relinquished();
    assert.deepEqual([t.held, t.lastClaimed], [0, next]);
    // The slot moves off a server heard to hash to ours (SPEC §7.4).
    let twin = 0;
    while (termSlot(`twin${twin}`) !== termSlot('self')) twin++;
    const u = terms();
    u.noteHostname(`twin${twin}`);
    assert.equal(u.slot, termSlot('self', 1));
    assert.equal(slotOf(u.next), termSlot('self', 1));
  });

  test('a claim below the term of a master we followed is withheld for a tock and a tick, then followed', () => {
    const t = terms();
    t.noteTerm(heard(50), at(0), false, 'self');
    t.noteMasterTerm(50);
    assert.equal(t.withholding('low', 20, at(100)), 'new');
    assert.equal(t.nextDeadline(false), 100 + TOCK + TICK);
    assert.equal(t.nextDeadline(true), Infinity, 'a master withholds nothing');
    assert.equal(t.withholding('low', 20, at(100 + TOCK + TICK - 1)), 'yes');
    assert.equal(t.withholding('low', 20, at(100 + TOCK + TICK)), 'no');
    // Another claimant starts its own wait; at or above the term, without a term, or past the ceiling: no wait.
    assert.equal(t.withholding('other', 20, at(100 + TOCK + TICK)), 'new');
    assert.equal(t.withholding('high', 50, at(0)), 'no');
    assert.equal(t.withholding('old', 0, at(0)), 'no');
    t.agree();
    assert.equal(t.nextDeadline(false), Infinity);
    const forged = terms();
    forged.noteTerm(heard(TERM_CEILING + 1), at(0), false, 'self');
    forged.noteMasterTerm(TERM_CEILING + 1);
    assert.equal(forged.withholding('low', 20, at(0)), 'no');
  });

  test('the term a master we followed held counts only as far as we adopted it', () => {
    const t = terms();
    t.noteTerm(heard(10), at(0), false, 'self');
    t.noteMasterTerm(MAX_TERM);
    assert.equal(t.masterTerm, 10);
  });

  test('as master, a higher term with no rival is claimed above a tick after it is first seen', () => {
    const t = terms();
    t.claim(t.next);
    t.noteTerm(heard(t.held + 1, { master: true, hostname: 'rival' }), at(0), true, 'self');
    assert.equal(t.reclaim(at(0)), null);
    assert.equal(t.nextDeadline(true), TICK);
    assert.equal(t.reclaim(at(TICK - 1)), null);
    assert.equal(t.reclaim(at(TICK)), 'a higher term was claimed elsewhere');
    // A rival in sight explains it: the wait starts again.
    t.reclaim(at(TICK + 1));
    t.facingRival();
    assert.equal(t.reclaim(at(2 * TICK + 1)), null);
  });

  test('as master, a higher term from a server that follows no other master is claimed above at once, once a tick at most', () => {
    const t = terms();
    t.claim(t.next);
    t.noteTerm(heard(t.held + 1), at(0), true, 'self');
    assert.equal(t.reclaim(at(0)), 'a server that follows no other master knows a higher term');
    t.claim(t.held + TERM_SLOTS);
    t.noteTerm(heard(t.held + 1, { lead: { h: 'self', age: 0, t: 1 } }), at(10), true, 'self');
    assert.equal(t.reclaim(at(10)), null, 'once a tick');
    // One that follows another master: its rival's word may be on its way.
    const u = terms();
    u.claim(u.next);
    u.noteTerm(heard(u.held + 1, { lead: { h: 'other', age: 0, t: 1 } }), at(0), true, 'self');
    assert.equal(u.reclaim(at(0)), null);
  });

  test('a checkpoint replaces ours when newer and of a term we hold', () => {
    const t = terms();
    t.noteTerm(heard(5), at(0), false, 'self');
    assert.equal(t.replaces({ t: 5, v: 1, d: 1 }, null), true);
    assert.equal(t.replaces({ t: 6, v: 1, d: 1 }, null), false, 'a term beyond ours');
    assert.equal(t.replaces({ t: 5, v: 2, d: 1 }, { t: 5, v: 1, d: 0 }), true);
    assert.equal(t.replaces({ t: 5, v: 1, d: 1 }, { t: 5, v: 1, d: 0 }), false);
    assert.equal(t.replaces({ t: 4, v: 9, d: 1 }, { t: 5, v: 1, d: 0 }), false);
  });
});
