/**
 * Property-based tests: fast-check generates fault schedules (as plain `Scenario` data),
 * the simulator plays each under every invariant, and a failure is shrunk to a minimal
 * schedule, printed as JSON to replay with `npm run sim -- --scenario FILE --trace`.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HANDOFF_PROBES, PROBES, runScenario, type Fault, type Scenario, type Target } from '../sim/scenario';

/** Longer hunts: PROPERTY_RUNS=5000 PROPERTY_SEED=42 node --test dist/test/sim.property.test.js (npm test: 300, fixed seeds). */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
const seedOr = (seed: number): number => (process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : seed);

const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'];
const MAX_HOSTS = NAMES.length;
/** Fault times are in ticks; faults happen within the first 12. */
const time = (max: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: max * 100 }).map((v) => v / 100);
const rate = fc.integer({ min: 0, max: 100 }).map((v) => v / 100);
const target: fc.Arbitrary<Target> = fc.oneof(fc.constant('master' as const), fc.nat({ max: MAX_HOSTS - 1 }));
const hostSet = fc.uniqueArray(fc.nat({ max: MAX_HOSTS - 1 }), { minLength: 1, maxLength: MAX_HOSTS });

const window = <T extends object>(fields: fc.Arbitrary<T>): fc.Arbitrary<T & { at: number; until: number }> =>
  fc.tuple(time(12), time(6), fields).map(([at, length, rest]) => ({ ...rest, at, until: Math.round((at + length) * 100) / 100 }));

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record(
    { type: fc.constant('crash' as const), at: time(12), target, restartAfter: fc.option(time(6), { nil: undefined }) },
    { requiredKeys: ['type', 'at', 'target'] },
  ),
  fc.record(
    { type: fc.constant('shutdown' as const), at: time(12), target, restartAfter: fc.option(time(6), { nil: undefined }) },
    { requiredKeys: ['type', 'at', 'target'] },
  ),
  fc.record({ type: fc.constant('restart' as const), at: time(12), target, graceful: fc.boolean(), delay: time(1) }),
  fc.record({ type: fc.constant('stall' as const), at: time(12), target, ticks: time(6) }),
  fc.record({ type: fc.constant('wallstep' as const), at: time(20), target, ms: fc.integer({ min: -7_200_000, max: 7_200_000 }) }),
  fc.record({ type: fc.constant('eligible' as const), at: time(12), target, eligible: fc.boolean() }),
  window(fc.record({ type: fc.constant('partition' as const), groups: fc.array(fc.nat({ max: 2 }), { maxLength: MAX_HOSTS }) })),
  window(fc.record({ type: fc.constant('oneway' as const), from: hostSet, to: hostSet })),
  window(
    fc.record({
      type: fc.constant('net' as const),
      loss: rate,
      dup: rate,
      dupTicks: time(2),
      reorder: rate,
      reorderTicks: time(3),
      spike: rate,
      spikeTicks: time(6),
    }),
  ),
);

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    seed: fc.nat(),
    tickMs: fc.constantFrom(100, 1000),
    checkBeats: fc.integer({ min: 1, max: 5 }),
    latencyMs: fc.constantFrom(0.1, 1, 5),
    jitterMs: fc.integer({ min: 0, max: 5 }),
    exitOnConflict: fc.boolean(),
    order: fc.uniqueArray(fc.nat({ max: MAX_HOSTS - 1 }), { minLength: 1, maxLength: MAX_HOSTS }),
    eligible: fc.array(fc.boolean(), { minLength: MAX_HOSTS, maxLength: MAX_HOSTS }),
    locked: fc.array(
      fc.integer({ min: 0, max: 4 }).map((v) => v === 0),
      { minLength: MAX_HOSTS, maxLength: MAX_HOSTS },
    ),
    starts: fc.array(time(8), { minLength: MAX_HOSTS, maxLength: MAX_HOSTS }),
    faults: fc.array(fault, { maxLength: 6 }),
    probe: fc.constantFrom(...PROBES),
  })
  .map((r) => ({
    seed: r.seed,
    kind: 'custom' as const,
    tickMs: r.tickMs,
    checkBeats: r.checkBeats,
    latencyMs: r.latencyMs,
    jitterMs: r.jitterMs,
    exitOnConflict: r.exitOnConflict,
    // Host order is not sort order: index i is NAMES[order[i]].
    hosts: r.order.map((name, i) => ({
      name: NAMES[name] as string,
      eligible: r.eligible[i] as boolean,
      locked: r.locked[i] as boolean,
      startAt: r.starts[i] as number,
    })),
    faults: [...r.faults].sort((a, b) => a.at - b.at),
    probe: r.probe,
    stableTicks: 2 * r.checkBeats + 4,
  }));

/** Fault schedules of the election features: the same faults, plus manual handoffs and priority reloads. */
const electionFault: fc.Arbitrary<Fault> = fc.oneof(
  fault,
  fc.record({ type: fc.constant('stepdown' as const), at: time(12) }),
  fc.record({ type: fc.constant('promote' as const), at: time(12), target }),
  fc.record({ type: fc.constant('priority' as const), at: time(12), target, priority: fc.integer({ min: 0, max: 5 }) }),
);

/** Scenarios with priorities, a quorum (usually a majority), a second namespace, and handoff probes. */
const electionScenario: fc.Arbitrary<Scenario> = fc
  .record({
    base: scenario,
    priorities: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: MAX_HOSTS, maxLength: MAX_HOSTS }),
    quorum: fc.oneof(fc.constant('none' as const), fc.constant('majority' as const), fc.integer({ min: 1, max: MAX_HOSTS })),
    foreign: fc.option(fc.uniqueArray(fc.nat({ max: MAX_HOSTS - 1 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    faults: fc.array(electionFault, { maxLength: 6 }),
    probe: fc.constantFrom(...PROBES, ...HANDOFF_PROBES),
  })
  .map((r) => {
    const s: Scenario = { ...r.base, faults: [...r.faults].sort((a, b) => a.at - b.at), probe: r.probe };
    s.hosts = s.hosts.map((host, i) => ({ ...host, priority: r.priorities[i] as number }));
    const eligible = s.hosts.filter((host) => host.eligible).length;
    if (r.quorum === 'majority' && eligible > 0) s.quorum = Math.floor(eligible / 2) + 1;
    else if (typeof r.quorum === 'number') s.quorum = r.quorum;
    // A second cluster on the same port, reusing some of our hostnames.
    if (r.foreign)
      s.foreign = {
        clusterId: 'other',
        hosts: r.foreign.map((i) => ({ name: NAMES[i] as string, eligible: true, locked: false, startAt: 0 })),
      };
    return s;
  });

/**
 * Partial connectivity and racing calls: single directions of links (lost, slowed, duplicated),
 * cuts that stay, timing reloads (each server reloaded goes back to the scenario's timing at the
 * end), handoffs and eligibility, at any instant.
 */
const link: fc.Arbitrary<Fault> = window(
  fc.record({
    type: fc.constant('link' as const),
    from: fc.nat({ max: MAX_HOSTS - 1 }),
    to: fc.nat({ max: MAX_HOSTS - 1 }),
    drop: fc.oneof(fc.constant(1), fc.constant(0), rate),
    delayTicks: fc.oneof(fc.constant(0), time(2)),
    dup: fc.oneof(fc.constant(0), rate),
    dupTicks: time(2),
  }),
);
const raceFault: fc.Arbitrary<Fault> = fc.oneof(
  link,
  fc.record({
    type: fc.constant('timing' as const),
    at: time(12),
    target: fc.nat({ max: MAX_HOSTS - 1 }),
    tickFactor: fc.constantFrom(0.25, 0.5, 1, 2, 4),
    checkBeats: fc.integer({ min: 1, max: 5 }),
  }),
  fc.record({ type: fc.constant('stepdown' as const), at: time(12) }),
  fc.record({ type: fc.constant('promote' as const), at: time(12), target }),
  fc.record({ type: fc.constant('eligible' as const), at: time(12), target, eligible: fc.boolean() }),
);
const raceScenario: fc.Arbitrary<Scenario> = fc
  .record({
    base: scenario,
    faults: fc.array(raceFault, { maxLength: 8 }),
    cut: fc.option(
      fc.tuple(
        time(12),
        fc.array(fc.tuple(fc.nat({ max: MAX_HOSTS - 1 }), fc.nat({ max: MAX_HOSTS - 1 })), { minLength: 1, maxLength: 3 }),
      ),
      { nil: undefined },
    ),
    probe: fc.constantFrom(...PROBES, ...HANDOFF_PROBES),
  })
  .map((r) => {
    const s: Scenario = { ...r.base, kind: 'custom', faults: [...r.faults], probe: r.probe };
    const n = s.hosts.length;
    const end = Math.max(0, ...s.faults.map((f) => ('until' in f && typeof f.until === 'number' ? f.until : f.at))) + 1;
    for (const fault of r.faults)
      if (fault.type === 'timing')
        s.faults.push({ type: 'timing', at: end, target: fault.target, tickFactor: 1, checkBeats: s.checkBeats });
    s.faults.sort((a, b) => a.at - b.at);
    // A cut that stays needs a bridge every cut server still hears: the last host is never cut.
    if (r.cut && n >= 3) {
      const pairs = r.cut[1].map(([a, b]) => [a % (n - 1), b % (n - 1)] as [number, number]).filter(([a, b]) => a !== b);
      if (pairs.length > 0) {
        s.cut = { at: r.cut[0], pairs };
        // The bridge must stay: a server that exits on a conflict could be it.
        s.exitOnConflict = false;
      }
    }
    return s;
  });

function explain(s: Scenario): string {
  const result = runScenario(s);
  return result.violation
    ? `${result.violation.message}\nreplay: save this scenario as s.json, then npm run sim -- --scenario s.json --trace\n${JSON.stringify(s)}`
    : 'ok';
}

describe('generated fault schedules', () => {
  test('every invariant holds for 300 generated schedules (1 to 7 servers, up to 6 faults of every kind)', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const result = runScenario(s);
        if (result.violation) throw new Error(explain(s));
      }),
      { numRuns: RUNS, seed: seedOr(20260101) },
    );
  });

  test('every invariant holds for 300 generated schedules with priorities, quorums, manual handoffs and a second namespace', () => {
    fc.assert(
      fc.property(electionScenario, (s) => {
        const result = runScenario(s);
        if (result.violation) throw new Error(explain(s));
      }),
      { numRuns: RUNS, seed: seedOr(20261125) },
    );
  });

  test('every invariant holds for 300 generated schedules of partial connectivity and racing calls (single directions of links, cuts that stay, timing reloads, handoffs, eligibility)', () => {
    fc.assert(
      fc.property(raceScenario, (s) => {
        const result = runScenario(s);
        if (result.violation) throw new Error(explain(s));
      }),
      { numRuns: RUNS, seed: seedOr(20261207) },
    );
  });

  test('a failure shrinks to a minimal schedule', () => {
    // A deliberately false belief: "after the faults, the live eligible server that sorts
    // first is master". It is not: a master never hands over to a server that sorts before
    // it (SPEC 4.3). fast-check must refute it and shrink the counterexample to about the
    // smallest there is: two servers, at most one fault.
    const belief = (s: Scenario): boolean => {
      const result = runScenario(s);
      if (result.violation || result.convergenceTicks === null) return true;
      return result.master === ([...result.liveEligible].sort()[0] ?? '');
    };
    const details = fc.check(fc.property(scenario, belief), { numRuns: 500, seed: 7 });
    assert.equal(details.failed, true, 'the false belief was not refuted');
    const [shrunk] = details.counterexample as [Scenario];
    assert.ok(details.numShrinks > 0);
    assert.equal(belief(shrunk), false, 'the shrunk schedule still refutes the belief');
    assert.equal(shrunk.hosts.length, 2, JSON.stringify(shrunk));
    assert.ok(shrunk.faults.length <= 1, JSON.stringify(shrunk));
  });
});
