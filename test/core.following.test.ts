/**
 * Which claim a slave follows (src/core/following.ts; SPEC §7.2, §9): the newest claim when
 * exactly one has the highest term, none on a tie, during a handoff only its target and claims
 * above the handing master's term, and every claim not followed shown as `master: false`.
 *
 * Following reads the claims from a term index instead of every claimant's term (a forger's
 * flood of claims made that read the cost of a step). The first test holds it to the rule as
 * first written, a read of every live claimant's term, in two copies of one world driven
 * through thousands of random changes: claims begun and ended, terms heard directly and from
 * followers' words, handoffs, removals, time passing deadlines.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../sim/random';
import { Following, type Choice } from '../src/core/following';
import type { Instant } from '../src/elector/types';
import { TERM_CEILING } from '../src/protocol/limits';
import { at, coreParts, hear } from './helpers/core-parts';

class World {
  readonly parts = coreParts('self');
  readonly timing = this.parts.timing;
  readonly relays = this.parts.relays;
  readonly members = this.parts.members;
  readonly words = this.parts.words;
  readonly handoffs = this.parts.handoffs;
  readonly following = new Following(this.members, this.words, this.handoffs);

  heartbeat(hostname: string, master: boolean, term: number, now: Instant, heardAt = now.mono): void {
    hear(this.parts, hostname, now, term > 0 ? { master, term } : { master }, heardAt);
  }

  /** Which rows show master. */
  shown(): string[] {
    return [...this.members.entries()].filter(([, peer]) => peer.record.master).map(([hostname]) => hostname);
  }
}

/** The rule as first written (roles.ts before the index): every live claimant's term read, in a list. */
function linear(world: World, now: Instant): Choice {
  const { members, words, handoffs } = world;
  const supersede = (hostname: string): void => {
    const record = members.get(hostname)?.record;
    if (record?.master) {
      record.master = false;
      members.touch(hostname);
    }
  };
  let claimants = words.claimants(members.liveClaimants(now), now);
  const termOf = (hostname: string): number => words.termOf(hostname, now);
  const pending = handoffs.filtering(now);
  if (pending && claimants.length > 0) {
    const current = claimants.filter((hostname) => hostname === pending.target || termOf(hostname) > pending.term);
    for (const hostname of claimants) if (!current.includes(hostname)) supersede(hostname);
    claimants = current;
  }
  if (claimants.length > 1) {
    let newest = '';
    let newestTerm = -1;
    let tie = false;
    for (const hostname of claimants) {
      const term = termOf(hostname);
      if (term > newestTerm) [newest, newestTerm, tie] = [hostname, term, false];
      else if (term === newestTerm) tie = true;
    }
    if (!tie) {
      for (const hostname of claimants) if (hostname !== newest) supersede(hostname);
      claimants = [newest];
    }
  }
  return { count: Math.min(claimants.length, 2) as 0 | 1 | 2, only: claimants.length === 1 ? claimants[0] : undefined };
}

describe('Following', () => {
  test('chooses, and shows as superseded, what a read of every claimant finds, after any sequence of changes', () => {
    let compared = 0;
    let followed = 0;
    let several = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = new Random(seed);
      const indexed = new World();
      const scanned = new World();
      const both = (act: (world: World) => void): void => {
        act(indexed);
        act(scanned);
      };
      const hostnames = Array.from({ length: 16 }, (_, i) => `h${i}`);
      const terms = [0, 1, 5, 5, 9, 65537 * 2, TERM_CEILING + 3];
      let mono = 0;
      for (let i = 0; i < 800; i++) {
        mono += r.pick([0, 1, 10, 100, 400, 1000, 3500]);
        const now: Instant = { mono, wall: mono };
        const hostname = r.pick(hostnames);
        const what = r.int(0, 99);
        if (what < 50) {
          const master = r.chance(0.6);
          const term = r.pick(terms);
          const heardAt = r.chance(0.9) ? mono : mono - r.pick([500, 5000]);
          both((w) => w.heartbeat(hostname, master, term, now, heardAt));
        } else if (what < 58) {
          // A follower's word of a master, fresh or stale, about one we hear or one we do not.
          const lead = r.chance(0.7) ? r.pick(hostnames) : 'ghost';
          const word = { h: lead, age: r.pick([0, 50, 2000, 9000]), t: r.pick(terms) };
          if (lead !== hostname) both((w) => w.relays.note(hostname, word, mono));
        } else if (what < 64) {
          const target = r.chance(0.8) ? r.pick(hostnames) : 'ghost';
          const until = mono + r.pick([0, 500, 3000]);
          const term = r.pick(terms);
          both((w) => w.handoffs.begin(target, until, r.chance(0.5), term));
        } else if (what < 70) {
          both((w) => {
            const peer = w.members.get(hostname);
            if (peer) w.members.remove(hostname, peer);
          });
        } else if (what < 74) {
          both((w) => {
            const peer = w.members.get(hostname);
            if (peer) w.members.clearClaim(hostname, peer);
          });
        } else if (what < 80) {
          // What roles.ts does: show the master it follows, or a rival about to yield.
          const master = r.chance(0.5);
          both((w) => w.members.showMaster(hostname, master));
        }
        const choice = indexed.following.choose(now);
        const want = linear(scanned, now);
        assert.deepEqual(choice, want, `seed ${seed}, step ${i} at ${mono} ms`);
        assert.deepEqual(indexed.shown().sort(), scanned.shown().sort(), `seed ${seed}, step ${i}: rows shown as master`);
        assert.equal(indexed.words.relying, scanned.words.relying, `seed ${seed}, step ${i}: relying on a word`);
        compared++;
        if (choice.count === 1) followed++;
        if (choice.count === 2) several++;
      }
    }
    assert.equal(compared, 30 * 800);
    // The walk met every outcome, not just "no claimant".
    assert.ok(followed > 1000 && several > 200, `followed ${followed}, several ${several}`);
  });

  test('the one claim with the highest term is followed, the others shown superseded; a tie follows none', () => {
    const world = new World();
    world.heartbeat('a', true, 5, at(0));
    world.heartbeat('b', true, 9, at(0));
    world.heartbeat('c', true, 7, at(0));
    assert.deepEqual(world.following.choose(at(1)), { count: 1, only: 'b' });
    assert.deepEqual(world.shown(), ['b']);
    // A row shown as master again (roles.ts shows the master it follows) is superseded again.
    world.members.showMaster('a', true);
    assert.deepEqual(world.following.choose(at(1)), { count: 1, only: 'b' });
    assert.deepEqual(world.shown(), ['b']);
    world.heartbeat('c', true, 9, at(2));
    assert.deepEqual(world.following.choose(at(3)), { count: 2, only: undefined });
    assert.deepEqual(world.shown().sort(), ['b', 'c']);
  });

  test('a claim past its deadline is not followed, and the next newest is', () => {
    const world = new World();
    world.heartbeat('a', true, 5, at(0));
    world.heartbeat('b', true, 9, at(0));
    const dead = world.timing.deadAfterMs;
    world.heartbeat('a', true, 5, at(dead - 1));
    assert.deepEqual(world.following.choose(at(dead - 1)), { count: 1, only: 'b' });
    assert.deepEqual(world.following.choose(at(dead)), { count: 1, only: 'a' });
  });

  test("during a handoff, a claim at or below the handing master's term is not followed; its target is, whatever its term", () => {
    const world = new World();
    world.heartbeat('old', true, 9, at(0));
    world.heartbeat('target', true, 3, at(0));
    world.handoffs.begin('target', 3000, true, 9);
    assert.deepEqual(world.following.choose(at(1)), { count: 1, only: 'target' });
    assert.deepEqual(world.shown(), ['target']);
    // Past the handoff's end the rule is the term alone again.
    world.heartbeat('old', true, 9, at(3000));
    assert.deepEqual(world.following.choose(at(3000)), { count: 1, only: 'old' });
  });

  test("a master live only on a follower's word counts, with the word's term", () => {
    const world = new World();
    world.heartbeat('a', true, 5, at(0));
    world.heartbeat('f', false, 0, at(0));
    world.relays.note('f', { h: 'far', age: 0, t: 8 }, 10);
    assert.deepEqual(world.following.choose(at(10)), { count: 1, only: 'far' });
    assert.deepEqual(world.shown(), []);
    assert.equal(world.words.relying, true);
  });
});
