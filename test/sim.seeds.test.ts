/**
 * The simulator inside `npm test`: a fixed set of seeds (every fault kind at every size
 * but 100, plus a few 100-server runs), and checks that the invariant checker itself catches
 * what it claims to catch. The scenarios of the bugs the simulator found are replayed by
 * sim.regressions.test.ts. A seed replays with `npm run sim -- --seed S --trace`.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import { InvariantChecker, Violation } from '../sim/invariants';
import { KINDS, runScenario, scenarioFromSeed, seedShape, type Kind, type Scenario } from '../sim/scenario';

function assertClean(seed: number, scenario: Scenario = scenarioFromSeed(seed)): void {
  const result = runScenario(scenario);
  if (result.violation) {
    assert.fail(
      `seed ${seed} (${scenario.kind}, ${scenario.hosts.length} servers): ${result.violation.message}\n  replay: npm run sim -- --seed ${seed} --trace`,
    );
  }
}

describe('fixed seeds', () => {
  test('seeds 1..330 at 2, 3, 5 and 16 servers (over 200 runs, every fault kind) hold every invariant', () => {
    let runs = 0;
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 330; seed++) {
      if (seedShape(seed).n > 16) continue;
      assertClean(seed);
      kinds.add(seedShape(seed).kind);
      runs++;
    }
    assert.ok(runs >= 200, `${runs} runs`);
    assert.equal(kinds.size, KINDS.length);
  });

  test('a few 100-server seeds hold every invariant', () => {
    // One run of each kind at 100 servers would take too long here: these cover crash,
    // partition, stall, mixed, quorum and the forger.
    const wanted: Kind[] = ['crash', 'partition', 'stall', 'mixed', 'quorum', 'forger'];
    for (const kind of wanted) {
      const seed = [...Array(400).keys()].find((s) => seedShape(s).n === 100 && seedShape(s).kind === kind) as number;
      assertClean(seed);
    }
  });
});

describe('the checker catches what it claims to', () => {
  function stableCluster(): { sim: SimCluster; checker: InvariantChecker } {
    const sim = new SimCluster({ seed: 3, tickMs: 1000, checkBeats: 3, latencyMs: 1, keepEvents: false });
    const checker = new InvariantChecker(sim, ['c']);
    for (const host of ['a', 'b', 'c']) sim.add(host);
    checker.converge(4001, 1002);
    sim.at(4001, () => checker.checkDeadline());
    sim.runUntil(5000);
    assert.equal(checker.phase, 'stable');
    assert.equal(checker.agreedMaster, 'a');
    return { sim, checker };
  }

  function violationOf(fn: () => void): Violation {
    try {
      fn();
    } catch (err) {
      if (err instanceof Violation) return err;
      throw err;
    }
    assert.fail('no violation');
  }

  test('a forged master heartbeat in a stable cluster is a flap', () => {
    const { sim } = stableCluster();
    const b = sim.node('b');
    // A second claimant with a newer term: b follows it, away from the agreed master.
    sim.at(5500, () =>
      sim.injectMessage(b.id, {
        action: 'heartbeat',
        hostname: 'z',
        ip: '127.0.0.1',
        master: true,
        eligible: true,
        uptime: 5,
        data: {},
        iid: 'eeeeeeeeeeeeeeee',
        seq: 1,
        term: sim.node('a').core.term + 1,
      }),
    );
    const violation = violationOf(() => sim.runUntil(7000));
    assert.equal(violation.invariant, 'stable-no-flap', violation.message);
    assert.equal(violation.time, 5500);
  });

  test('a cluster that cannot agree by the deadline is reported', () => {
    const sim = new SimCluster({ seed: 4, tickMs: 1000, checkBeats: 3 });
    const checker = new InvariantChecker(sim);
    for (const host of ['a', 'b']) sim.add(host);
    sim.partition([['a'], ['b']]);
    sim.runUntil(1);
    checker.converge(6000, 0);
    sim.at(6000, () => checker.checkDeadline());
    const violation = violationOf(() => sim.runUntil(10_000));
    assert.equal(violation.invariant, 'agreed-within-bound');
    assert.equal(violation.time, 6000);
  });

  test('removing a locked record is reported, in any phase', () => {
    const { sim } = stableCluster();
    assert.ok(sim.node('a').core.table.c?.locked, 'the checker locks the records of locked hosts as they appear');
    sim.lock('a', 'c', false); // the application changes its mind; the checker still holds c locked
    sim.crash('c');
    const violation = violationOf(() => sim.runUntil(20_000));
    assert.equal(violation.invariant, 'locked-never-removed');
  });

  test('a master that stays master when made ineligible is reported', () => {
    const { sim } = stableCluster();
    const a = sim.node('a');
    // A broken core: it reports itself ineligible but ignores the change.
    const real = a.core;
    sim.replaceCore(
      'a',
      new Proxy(real, {
        get(target, property) {
          if (property === 'eligible') return false;
          if (property === 'setEligible') return () => ({ send: [], events: [], logs: [], wakeAt: Infinity });
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      }),
    );
    const violation = violationOf(() => sim.setEligible('a', false));
    assert.equal(violation.invariant, 'ineligible-never-master');
  });

  test('a server added from another namespace is reported', () => {
    const sim = new SimCluster({ seed: 5, tickMs: 1000, checkBeats: 3, latencyMs: 1, keepEvents: false });
    const checker = new InvariantChecker(sim);
    for (const host of ['a', 'b']) sim.add(host);
    sim.add('x@green', { hostname: 'x', clusterId: 'green' });
    sim.runUntil(5000);
    // A heartbeat of x without its cluster id, as if the namespace check were missing.
    sim.at(5500, () =>
      sim.injectMessage('b', {
        action: 'heartbeat',
        hostname: 'x',
        ip: '127.0.0.1',
        master: false,
        eligible: true,
        uptime: 5,
        data: {},
        iid: 'ffffffffffffffff',
        seq: 1,
      }),
    );
    const violation = violationOf(() => sim.runUntil(7000));
    assert.equal(violation.invariant, 'namespace-isolated', violation.message);
    assert.equal(checker.phase, 'faulty');
  });

  test('a run replays exactly from its seed', () => {
    const first = runScenario(scenarioFromSeed(77), { trace: true });
    const second = runScenario(scenarioFromSeed(77), { trace: true });
    assert.deepEqual(second.timeline, first.timeline);
    assert.equal(second.steps, first.steps);
    assert.ok(first.timeline.length > 20);
  });
});
