/**
 * Master work in the simulator (sim/work.ts, SPEC 9.6 and 9.7): schedulers call exclusive() on
 * every server, tasks commit to a fenced store. A master frozen mid-task past a failover, then
 * woken, never commits after the next master's first commit; the invariant that says so fails
 * when the store is not fenced; and handovers on purpose drain, so nothing is refused or
 * aborted. The sweep (`npm run sim -- --kind work`) runs the same over many seeds.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runScenario, type Fault, type Scenario } from '../sim/scenario';

function scenario(seed: number, work: NonNullable<Scenario['work']>, faults: Fault[]): Scenario {
  return {
    seed,
    kind: 'custom',
    tickMs: 1000,
    checkBeats: 3,
    latencyMs: 0.5,
    jitterMs: 2,
    exitOnConflict: false,
    hosts: ['a', 'b', 'c'].map((name) => ({ name, eligible: true, locked: false, startAt: 0 })),
    faults,
    probe: 'none',
    stableTicks: 10,
    work,
  };
}

/** Tasks of a tick or so, every fifth of a tick; the master frozen mid-task for 4 to 12 ticks (a tock is 3). */
function frozen(seed: number, careless: number, fenced = true): Scenario {
  return scenario(seed, { everyTicks: 0.2, minTaskTicks: 0.8, maxTaskTicks: 1.5, drainTicks: 2, careless, fenced }, [
    { type: 'stall', at: 6 + (seed % 7) / 10, target: 'master', ticks: 4 + (seed % 9) },
  ]);
}

describe('master work in the simulator', () => {
  test('a master frozen mid-task past a failover, then woken, never commits after the new master first committed', () => {
    let refused = 0;
    for (let seed = 1; seed <= 30; seed++) {
      for (const careless of [0, 1]) {
        const result = runScenario(frozen(seed, careless));
        assert.equal(result.violation, null, `seed ${seed}, careless ${careless}: ${result.violation?.message}`);
        const work = result.work;
        assert.ok(work && work.accepted > 10, `seed ${seed}: ${work?.accepted} commits`);
        if (careless === 1) {
          // The woken task ignores its signal: it tries to commit with the old term, and the fence refuses it.
          assert.ok(work.refused >= 1, `seed ${seed}: the woken master's commit was not refused`);
          refused += work.refused;
        }
      }
    }
    assert.ok(refused >= 30);
  });

  test('the invariant bites: with a store that takes every commit, the woken master commits after its successor', () => {
    let caught = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const result = runScenario(frozen(seed, 1, false));
      assert.equal(result.violation?.invariant, 'fenced-commit-order', `seed ${seed}: ${result.violation?.message ?? 'no violation'}`);
      caught++;
    }
    assert.equal(caught, 10);
  });

  test('handovers on purpose (stepDown, a promote, a shutdown, ineligible) drain: nothing aborted, nothing refused', () => {
    for (let seed = 1; seed <= 10; seed++) {
      // Tasks up to 2 ticks, a drain of 5: every drain ends with its tasks, not at the timeout.
      const faults: Fault[] = [
        { type: 'stepdown', at: 6 },
        { type: 'promote', at: 12, target: seed % 3 },
        { type: 'eligible', at: 18, target: 'master', eligible: false },
        { type: 'eligible', at: 24, target: 0, eligible: true },
        { type: 'eligible', at: 24, target: 1, eligible: true },
        { type: 'eligible', at: 24, target: 2, eligible: true },
        { type: 'shutdown', at: 30, target: 'master', restartAfter: 2 },
      ];
      const result = runScenario(
        scenario(seed, { everyTicks: 0.3, minTaskTicks: 0.5, maxTaskTicks: 2, drainTicks: 5, careless: 0 }, faults),
      );
      assert.equal(result.violation, null, `seed ${seed}: ${result.violation?.message}`);
      const work = result.work;
      assert.ok(work, 'work ran');
      assert.ok(work.drains >= 3, `seed ${seed}: ${work.drains} drains`);
      assert.deepEqual(
        { refused: work.refused, roleLost: work.abortedRoleLost, drainTimeout: work.abortedDrainTimeout },
        { refused: 0, roleLost: 0, drainTimeout: 0 },
        `seed ${seed}`,
      );
    }
  });
});
