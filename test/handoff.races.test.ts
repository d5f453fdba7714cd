/**
 * Handoffs racing each other and the election, in the simulator (exact times): promote()
 * called while a stepDown() handoff is in flight, and storms of stepDown() and promote()
 * from several servers at one instant. Watched at every simulation step: never two masters
 * at once, never a server whose table shows two masters, one agreed master at the end.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import type { CoreEvent } from '../src/elector/types';

const TICK = 1000;
const TOCK = 3000;

/** Throws at the first step where two servers are master, or a server's table shows two masters. */
function watch(sim: SimCluster): { checks: number } {
  const seen = { checks: 0 };
  sim.observer = {
    afterStep() {
      seen.checks++;
      const masters = sim.masters();
      assert.ok(masters.length <= 1, `two masters at ${sim.now.toFixed(1)} ms: ${masters.join(', ')}`);
      for (const node of sim.live()) {
        const shown = Object.values(node.core.table)
          .filter((record) => record.master)
          .map((record) => record.hostname);
        assert.ok(shown.length <= 1, `${node.id}'s table shows ${shown.join(', ')} as master at ${sim.now.toFixed(1)} ms`);
      }
    },
  };
  return seen;
}

type Outcome = { ok: boolean; hostname?: string; reason: string };
function outcome(sim: SimCluster, host: string, type: 'promote' | 'stepdown'): Outcome[] {
  return sim.eventsOf(type, host).map((record) => record.event as Outcome);
}

describe('promote() while a stepDown() handoff is in flight', () => {
  for (const delay of [0.2, 1, 20, 100]) {
    test(`one-way delay ${delay} ms: charlie promotes the moment it learns alpha hands off to bravo; bravo, then charlie, each master alone`, () => {
      const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: delay });
      for (const host of ['alpha', 'bravo', 'charlie']) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'alpha', 2 * TOCK),
        null,
      );
      sim.runFor(300);
      watch(sim);
      sim.stepDown('alpha');
      // The moment charlie has read alpha's handoff heartbeat (it names no master now).
      assert.notEqual(
        sim.runUntilTrue(() => sim.node('charlie').core.masterHostname === '', 2 * delay + 1),
        null,
      );
      sim.promote('charlie');
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'charlie', TOCK),
        null,
        `not agreed on charlie: ${sim
          .live()
          .map((n) => `${n.id}→${n.core.masterHostname}`)
          .join(' ')}`,
      );
      sim.runFor(3 * TOCK);
      assert.equal(sim.agreedMaster(), 'charlie');
      assert.deepEqual(
        outcome(sim, 'charlie', 'promote').map((e) => e.ok),
        [true],
      );
      assert.deepEqual(
        outcome(sim, 'alpha', 'stepdown').map((e) => [e.ok, e.hostname]),
        [[true, 'bravo']],
      );
      const masters = sim.eventsOf('master').map((record) => record.host);
      const terms = sim.eventsOf('master').map((record) => (record.event as Extract<CoreEvent, { type: 'master' }>).term);
      assert.deepEqual(masters, ['alpha', 'bravo', 'charlie']);
      assert.ok(
        terms.every((term, i) => i === 0 || term > (terms[i - 1] as number)),
        `terms ${terms.join(', ')}`,
      );
    });
  }
});

describe('storms of stepDown() and promote() from several servers at one instant', () => {
  test('30 rounds on 5 servers, with and without delay: never two masters, no table with two, one agreed master after each round', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    for (let seed = 1; seed <= 30; seed++) {
      const sim = new SimCluster({
        seed,
        tickMs: TICK,
        checkBeats: 3,
        latencyMs: seed % 3 === 0 ? 0 : seed % 3 === 1 ? 1 : 20,
        jitterMs: seed % 2 ? 0 : 5,
      });
      for (const host of hosts) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK),
        null,
      );
      watch(sim);
      for (let round = 0; round < 4; round++) {
        sim.runFor(sim.random.next() * TICK);
        const calls = sim.random.int(2, 5);
        for (let i = 0; i < calls; i++) {
          const host = sim.random.pick(hosts);
          const master = sim.masters()[0];
          if (master && sim.random.chance(0.4)) sim.stepDown(master);
          else sim.promote(host);
          if (sim.random.chance(0.5)) sim.runFor(sim.random.next() * 3);
        }
        assert.notEqual(
          sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK),
          null,
          `seed ${seed} round ${round}: no agreed master`,
        );
        sim.runFor(TOCK);
      }
    }
  });
});
