/**
 * The member table's live claimants (SPEC 4.1: exactly one live claimant is the master) are
 * kept between steps instead of worked out from every claimant on every step (a flood of
 * forged claims made that O(claimants) a step; docs/PERFORMANCE.md). What it keeps must be
 * what a fresh look gives, whatever happens between two looks: claims begun and ended,
 * peers heard late or early, removed, left while locked, a timing reload (a second lane),
 * the grace growing and shrinking with lateness, time passing any deadline. So must its term
 * indexes of the claims and of the rows shown as master (claimants.ts), which a slave reads
 * instead of every claimant's term (following.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../sim/random';
import { MemberTable } from '../src/core/members';
import { Relays } from '../src/core/relays';
import { Step } from '../src/core/step';
import { Timing } from '../src/core/timing';
import type { Instant } from '../src/elector/types';
import type { HeartbeatMessage } from '../src/protocol/messages';

const TICK = 1000;

function heartbeat(r: Random, terms: Random, hostname: string, master: boolean): HeartbeatMessage {
  const message: HeartbeatMessage = {
    action: 'heartbeat',
    hostname,
    ip: '127.0.0.1',
    master,
    eligible: r.chance(0.8),
    uptime: 0,
    data: {},
    iid: r.chance(0.9) ? `iid-${hostname}` : r.hex(16),
    seq: r.int(0, 1000),
  };
  if (r.chance(0.5)) {
    message.tick = r.pick([TICK, 500, 2000]);
    message.beats = r.pick([1, 3]);
  }
  // Drawn apart, so the draws above are those of the seeds as they were.
  if (terms.chance(0.7)) message.term = terms.pick([1, 2, 2, 9, 65538]);
  return message;
}

/** Random operations on a table; after each, its live claimants against a fresh look at every peer. */
function churn(seed: number, steps: number): number {
  const r = new Random(seed);
  const terms = new Random(seed + 1000);
  const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
  const members = new MemberTable(timing, new Step(), 64, new Relays());
  const hostnames = Array.from({ length: 24 }, (_, i) => `h${i}`);
  /** Hostnames whose last heartbeat claimed master, in the order their claims began. */
  const claiming = new Set<string>();
  const claim = (hostname: string, master: boolean): void => {
    if (master) claiming.add(hostname);
    else claiming.delete(hostname);
  };
  let mono = 0;
  let compared = 0;
  for (let i = 0; i < steps; i++) {
    // Mostly small steps, so that what was kept is still in force at the next look.
    mono += r.chance(0.9) ? r.pick([0, 0, 1, 7, 50, 250]) : r.pick([999, 1000, 3000, 3010, 8000]);
    const now: Instant = { mono, wall: 1_700_000_000_000 + mono };
    const hostname = r.pick(hostnames);
    const peer = members.get(hostname);
    const what = r.int(0, 99);
    if (what < 55) {
      // Mostly what it said before: a claimant heard again changes nothing kept.
      const message = heartbeat(r, terms, hostname, r.chance(0.9) ? claiming.has(hostname) : r.chance(0.5));
      if (peer) {
        // Now, or earlier than now (a duplicate's other process followed), even earlier than before.
        const heardAt = r.chance(0.8) ? mono : mono - r.pick([1, 500, 2000, 5000]);
        members.follow(peer, message, '127.0.0.1', heardAt, now);
      } else {
        members.add(message, '127.0.0.1', now);
      }
      claim(hostname, message.master);
    } else if (what < 62 && peer) {
      members.remove(hostname, peer);
      claiming.delete(hostname);
    } else if (what < 67 && peer) {
      members.setLocked(hostname, !peer.record.locked);
    } else if (what < 73 && peer) {
      members.setLocked(hostname, true);
      members.markLeft(hostname, peer, now);
    } else if (what < 76 && peer) {
      members.clearClaim(hostname, peer);
      claiming.delete(hostname);
    } else if (what < 78) {
      // A config reload: peers known are judged by the timing before until they keep our pace.
      const before = { tickMs: timing.tickMs, checkBeats: timing.checkBeats };
      timing.tickMs = r.pick([500, 1000, 2000]);
      timing.checkBeats = r.pick([1, 3]);
      members.freezeTiming(before);
      members.timingChanged();
    } else if (what < 89) {
      timing.notePeerLateness(r.int(0, 300));
    } else {
      timing.noteLateness(r.pick([0, 0, 5, 100]), mono);
    }
    if (terms.chance(0.05)) members.showMaster(hostname, terms.chance(0.5)); // what a slave or a master shows (following.ts, conflict.ts)
    const termsOf = (hostnames: Iterable<string>): Map<string, number> =>
      new Map([...hostnames].map((h) => [h, members.get(h)?.record.term as number]));
    assert.deepEqual(new Map(members.claimants.byTerm.descending()), termsOf(claiming), `seed ${seed}, step ${i}: claims by term`);
    const shown = [...members.entries()].filter(([, peer]) => peer.record.master).map(([h]) => h);
    assert.deepEqual(new Map(members.claimants.shown.descending()), termsOf(shown), `seed ${seed}, step ${i}: rows shown as master`);
    const look = [...claiming].filter((h) => {
      const p = members.get(h);
      return p !== undefined && members.isLive(p, now);
    });
    const live = members.liveClaimants(now);
    assert.deepEqual(live, look, `seed ${seed}, step ${i} at ${mono} ms`);
    for (const h of hostnames) assert.equal(members.isLiveClaimant(h, now), look.includes(h), `seed ${seed}, step ${i}: ${h}`);
    // The caller may change what it was given (words.ts adds to it, roles.ts sorts it).
    live.reverse().push('zz-not-a-claimant');
    compared++;
  }
  return compared;
}

describe('live claimants kept between steps', () => {
  test('are, after any sequence of changes and at any time, those a fresh look at every claimant finds', () => {
    let compared = 0;
    for (let seed = 1; seed <= 40; seed++) compared += churn(seed, 1500);
    assert.equal(compared, 40 * 1500);
  });

  test('a claimant past its deadline leaves the list at that very instant, and one heard again returns', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    const members = new MemberTable(timing, new Step(), 64, new Relays());
    const at = (mono: number): Instant => ({ mono, wall: mono });
    // No timing fields: nothing it says moves the grace.
    const claim = (hostname: string): HeartbeatMessage => ({
      action: 'heartbeat',
      hostname,
      ip: '127.0.0.1',
      master: true,
      eligible: true,
      uptime: 0,
      data: {},
      iid: hostname,
    });
    members.add(claim('a'), '127.0.0.1', at(0));
    assert.deepEqual(members.liveClaimants(at(0)), ['a']);
    members.add(claim('b'), '127.0.0.1', at(100));
    const deadAfter = timing.deadAfterMs;
    assert.deepEqual(members.liveClaimants(at(100)), ['a', 'b']);
    assert.deepEqual(members.liveClaimants(at(deadAfter - 1)), ['a', 'b']);
    assert.deepEqual(members.liveClaimants(at(deadAfter)), ['b']);
    // Heard again (nobody removed it from the table): live at once.
    const a = members.get('a');
    assert.ok(a);
    members.follow(a, claim('a'), '127.0.0.1', deadAfter + 5, at(deadAfter + 5));
    assert.deepEqual(members.liveClaimants(at(deadAfter + 5)), ['a', 'b']);
    assert.deepEqual(members.liveClaimants(at(100 + deadAfter)), ['a']);
    // The grace grows with lateness: b, dead by the old span, is live again by the new one.
    timing.notePeerLateness(50);
    assert.ok(timing.deadAfterMs > deadAfter);
    assert.deepEqual(members.liveClaimants(at(100 + deadAfter)), ['a', 'b']);
    // Followed at an earlier hearing (the other process of a duplicate hostname): past its deadline by that one.
    const b = members.get('b');
    assert.ok(b);
    members.follow(b, claim('b'), '127.0.0.1', 100 - deadAfter, at(100 + deadAfter));
    assert.deepEqual(members.liveClaimants(at(100 + deadAfter)), ['a']);
  });
});
