/**
 * Fault scenarios for the coordinator (etcd) mode: a seed gives a cluster of lease-election
 * machines, a store with delays, and a fault window (store outages, one server's link to
 * the store cut, crashes, restarts, freezes, graceful shutdowns, eligibility flips, handoffs,
 * a slow store); then quiet, the cluster must converge and stay stable; then a probe
 * (crash, graceful shutdown, freeze, stepDown, promote or a join) with its own bound.
 *
 * Invariants (checked after every simulation step; the first broken one stops the run):
 *  - single-master-in-store-truth: a server that believes it is master (and is not frozen)
 *    holds the election key in the store, under its own lease, with its term as the key's
 *    create revision, and that lease has not reached its expiry in store time. So no two
 *    servers are ever master at one instant, whatever the delays and faults;
 *  - terms-increase: every `master` event carries a term above every earlier one (unique);
 *  - ineligible-never-master;
 *  - no-master-while-store-down: once the store has been down for a TTL, nobody is master;
 *  - resume-slave-first: a master frozen past its lease emits `slave` before any other event
 *    when it resumes, and a write fenced with its old term then fails in the store;
 *  - converges: after the faults stop, one master agreed by every live server (when one is
 *    eligible) within TTL + expiry sweep + tick + the store-op timeouts + round trips, and
 *    no master/slave/masterchange event from then on while nothing happens (stable);
 *  - probe bounds: master crash → new master within TTL + expiry sweep + round trips;
 *    graceful shutdown, stepDown(), promote() → new master within a few round trips (the
 *    requested one, term raised, both ends told); a joiner learns the master within a few
 *    round trips and never takes over;
 *  - cold-start-rank: with no faults and every start within half a tick, the eligible
 *    server that ranks first becomes master.
 */
import { LeaseSimCluster, type LeaseEventRecord, type LeaseNode } from './lease-cluster';
import { safetyMarginMs } from '../src/coordinator/lease-election';
import type { StoreSnapshot } from './lease-store';
import { LeaseChecker } from './lease-checker';
import {
  LeaseViolation,
  type LeaseFault,
  type LeaseHost,
  type LeaseInvariant,
  type LeaseRunResult,
  type LeaseScenario,
} from './lease-scenario-types';

export * from './lease-scenario-types';
export { leaseScenarioFromSeed, leaseSeedShape } from './lease-scenario-seed';

/** Play one scenario under the invariants. */
export function runLeaseScenario(
  scenario: LeaseScenario,
  options: { trace?: boolean; traceLevel?: number; earlyExpiryMs?: number } = {},
): LeaseRunResult {
  const sim = new LeaseSimCluster({
    seed: scenario.seed,
    tickMs: scenario.tickMs,
    checkBeats: scenario.checkBeats,
    ttlSeconds: scenario.ttlSeconds,
    minDelayMs: scenario.minDelayMs,
    maxDelayMs: scenario.maxDelayMs,
    expirySweepMs: scenario.expirySweepMs,
    trace: options.trace ?? false,
    traceLevel: options.traceLevel ?? 5,
    earlyExpiryMs: options.earlyExpiryMs ?? 0,
  });
  const checker = new LeaseChecker(sim);
  const result: LeaseRunResult = { scenario, violation: null, convergenceMs: null, probeMs: null, timeline: sim.timeline };
  try {
    play(sim, checker, scenario, result);
  } catch (err) {
    if (err instanceof LeaseViolation) result.violation = err;
    else result.violation = new LeaseViolation('no-exception', sim.now, err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
  return result;
}

/** A run: the servers and the faults scheduled, the app's checkpoints, the fault phase, then convergence and the probe. */
function play(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario, result: LeaseRunResult): void {
  for (const host of scenario.hosts) sim.add(host.name, { eligible: host.eligible, priority: host.priority, at: host.startAt });
  scheduleFaults(sim, checker, scenario);
  scheduleCheckpoints(sim, checker, scenario);
  watchLeaderChange(sim, checker, scenario);
  expectColdStartRank(checker, scenario);

  sim.runUntil(scenario.quietAt);
  // Faults are over (frozen servers resume by quietAt; crashed ones stay dead unless restarted).
  const bound = convergenceBound(scenario);
  const quiet = sim.now;
  const converged = converge(sim, checker, bound, quiet, 'converges', `after the faults stopped at ${quiet.toFixed(1)} ms`);
  result.convergenceMs = converged === null ? null : converged - quiet;
  stable(sim, checker, scenario.stableTicks * scenario.tickMs);

  result.probeMs = probe(sim, checker, scenario, result);
  if (scenario.probe !== 'none') {
    converge(sim, checker, bound, sim.now, 'converges', `after the ${scenario.probe} probe`);
    stable(sim, checker, scenario.stableTicks * scenario.tickMs);
  }
}

/** Convergence within TTL + expiry sweep + tick + two op timeouts and retries + round trips. */
function convergenceBound(scenario: LeaseScenario): number {
  const ttlMs = scenario.ttlSeconds * 1000;
  const opTimeout = Math.max(50, ttlMs / 2);
  const retry = Math.max(50, Math.min(ttlMs / 6, 1000));
  const roundTrips = 24 * scenario.maxDelayMs;
  return ttlMs + scenario.expirySweepMs + scenario.tickMs + 2 * (opTimeout + retry) + roundTrips;
}

function scheduleFaults(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario): void {
  const snapshots = new Map<LeaseFault, StoreSnapshot>();
  for (const fault of scenario.faults) {
    sim.at(fault.at, () => applyFault(sim, checker, scenario, fault, snapshots));
    if (fault.type === 'restore') {
      sim.at(fault.snapAt, () => {
        sim.note('*', 'STORE SNAPSHOT saved');
        snapshots.set(fault, sim.store.snapshot());
      });
      // Terms move on between the snapshot and the restore: the restore takes them back.
      sim.at((fault.snapAt + fault.at) / 2, () => {
        const master = sim.masters()[0];
        if (master) sim.stepDown(master.id);
      });
    }
  }
}

function applyFault(
  sim: LeaseSimCluster,
  checker: LeaseChecker,
  scenario: LeaseScenario,
  fault: LeaseFault,
  snapshots: Map<LeaseFault, StoreSnapshot>,
): void {
  const name = (index: number): string => (scenario.hosts[index] as LeaseHost).name;
  const masterOr = (target: number | 'master'): string => (target === 'master' ? (sim.masters()[0]?.id ?? name(0)) : name(target));
  switch (fault.type) {
    case 'crash':
    case 'shutdown': {
      const host = name(fault.host);
      if (fault.type === 'crash') sim.crash(host);
      else sim.shutdown(host);
      if (fault.restartAfter !== null) sim.restart(host, fault.restartAfter);
      break;
    }
    case 'freeze':
      sim.freeze(masterOr(fault.host), fault.ms);
      break;
    case 'outage':
      sim.storeDown();
      sim.at(fault.until, () => sim.storeUp());
      break;
    case 'cut': {
      const host = masterOr(fault.host);
      sim.cutLink(host);
      sim.at(fault.until, () => sim.healLink(host));
      break;
    }
    case 'slow':
      sim.store.extraDelayMs = fault.extraMs;
      sim.note('*', `STORE SLOW +${fault.extraMs} ms`);
      sim.at(fault.until, () => {
        sim.store.extraDelayMs = 0;
        sim.note('*', 'STORE FAST');
      });
      break;
    case 'eligible':
      sim.setEligible(name(fault.host), fault.eligible);
      break;
    case 'stepdown': {
      const master = sim.masters()[0];
      if (master) sim.stepDown(master.id);
      break;
    }
    case 'promote':
      sim.promote(name(fault.host));
      break;
    case 'leader':
      sim.storeLeaderless(fault.ms);
      break;
    case 'stall':
      sim.storeStall(fault.ms);
      break;
    case 'restore':
      sim.note('*', 'STORE RESTORED from the snapshot');
      checker.rewritten();
      sim.store.restore(snapshots.get(fault) as StoreSnapshot);
      break;
    case 'wipe':
      sim.note('*', 'STORE WIPED');
      checker.rewritten();
      sim.store.wipe();
      break;
  }
}

/** The app's work: a checkpoint from the master every tick, each acknowledged (or not) by the store. */
function scheduleCheckpoints(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario): void {
  let ticket = 0;
  const writeCheckpoint = (): void => {
    const master = sim.masters().find((node) => node.frozenUntil <= sim.now);
    if (master) {
      ticket++;
      if (sim.setCheckpoint(master.id, { n: ticket }, ticket)) checker.checkpointSent(ticket);
    }
    sim.at(sim.now + scenario.tickMs, writeCheckpoint);
  };
  sim.at(scenario.tickMs, writeCheckpoint);
}

/** A leader election alone must change nothing: no master, slave or masterchange anywhere. */
function watchLeaderChange(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario): void {
  const firstLeader = scenario.kind === 'leader' ? scenario.faults[0] : undefined;
  if (!firstLeader) return;
  sim.at(firstLeader.at - 0.001, () => {
    if (sim.agreedMaster() === null) return;
    // Servers that follow the master now (a joiner starting meanwhile learns it: that is no change).
    for (const node of sim.live()) if (node.machine.connected) checker.noFlap.add(node.machine);
    checker.noFlapUntil = scenario.quietAt;
  });
}

/** Cold start with no faults: the first master is the eligible server that ranks first. */
function expectColdStartRank(checker: LeaseChecker, scenario: LeaseScenario): void {
  const startSpread = Math.max(...scenario.hosts.map((h) => h.startAt)) - Math.min(...scenario.hosts.map((h) => h.startAt));
  // "Together": every server has started and registered (a grant and a put: 4 one-way delays) within half a tick.
  if (scenario.faults.length > 0 || startSpread + 4 * scenario.maxDelayMs > scenario.tickMs / 2) return;
  const best = [...scenario.hosts]
    .filter((h) => h.eligible)
    .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0] as LeaseHost;
  checker.expectFirstMaster = best.name;
}

/** The probe of the stable cluster, with its bound; returns the ms it took (null: none measured). */
function probe(sim: LeaseSimCluster, checker: LeaseChecker, scenario: LeaseScenario, result: LeaseRunResult): number | null {
  const master = sim.masters()[0];
  const eligibleOthers = sim.live().filter((node) => node !== master && node.machine.eligible);
  const ttlMs = scenario.ttlSeconds * 1000;
  const rt = 2 * scenario.maxDelayMs;
  switch (scenario.probe) {
    case 'crash':
      if (!master || eligibleOthers.length === 0) return null;
      sim.crash(master.id);
      return newMasterWithin(sim, ttlMs + scenario.expirySweepMs + 6 * rt + 1, "the master's crash (TTL + sweep + round trips)");
    case 'graceful':
      if (!master || eligibleOthers.length === 0) return null;
      sim.shutdown(master.id);
      return newMasterWithin(sim, 8 * rt + 1, "the master's graceful shutdown");
    case 'freeze': {
      if (!master) return null;
      const probeStart = sim.now;
      sim.freeze(master.id, ttlMs * 1.5);
      checker.watchResume(master, master.machine.term, probeStart + ttlMs * 1.5);
      sim.runFor(ttlMs * 1.5 + 1);
      return null;
    }
    case 'stepdown':
    case 'promote':
      if (!master || eligibleOthers.length === 0) return null;
      return handoff(sim, scenario, master, eligibleOthers, rt, result);
    case 'join':
      return master ? join(sim, checker, master, rt) : null;
    case 'none':
      return null;
  }
}

/** Run until every live server agrees on one master; the ms it took, or a probe-bound violation after `limit`. */
function newMasterWithin(sim: LeaseSimCluster, limit: number, after: string): number {
  const probeStart = sim.now;
  const at = sim.runUntilTrue(() => sim.agreedMaster() !== null, limit);
  if (at === null) throw new LeaseViolation('probe-bound', sim.now, `no agreed master within ${limit} ms of ${after}`);
  return at - probeStart;
}

/** stepDown() on the master, or promote() of the last eligible other: the handoff within round trips, term raised, requester told. */
function handoff(
  sim: LeaseSimCluster,
  scenario: LeaseScenario,
  master: LeaseNode,
  eligibleOthers: LeaseNode[],
  rt: number,
  result: LeaseRunResult,
): number {
  const probeStart = sim.now;
  const oldTerm = master.machine.term;
  const target = scenario.probe === 'promote' ? (eligibleOthers[eligibleOthers.length - 1] as LeaseNode) : null;
  if (target) sim.promote(target.id);
  else sim.stepDown(master.id);
  const limit = 8 * rt + 1;
  const want = (): boolean => {
    const agreed = sim.agreedMaster();
    return agreed !== null && agreed !== master.id && (target === null || agreed === target.id);
  };
  const at = sim.runUntilTrue(want, limit);
  if (at === null) throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: no handoff within ${limit} ms`);
  // Reported with the run even when a check below fails.
  result.probeMs = at - probeStart;
  const agreed = sim.node(sim.agreedMaster() as string);
  if (agreed.machine.term <= oldTerm)
    throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: term ${agreed.machine.term} not above ${oldTerm}`);
  sim.runFor(rt + 1);
  const outcome = target
    ? target.events.filter((r) => r.event.type === 'promote')
    : master.events.filter((r) => r.event.type === 'stepdown');
  const last = outcome[outcome.length - 1]?.event;
  if (!last || !('ok' in last) || !last.ok || (outcome[outcome.length - 1] as LeaseEventRecord).time < probeStart) {
    throw new LeaseViolation('probe-bound', sim.now, `${scenario.probe}: the requester was not told of success`);
  }
  return at - probeStart;
}

/** A joiner that sorts first learns the master within round trips, and never takes over (the checker watches). */
function join(sim: LeaseSimCluster, checker: LeaseChecker, master: LeaseNode, rt: number): number {
  const probeStart = sim.now;
  const joiner = sim.add('aardvark', {});
  checker.joiner = joiner;
  const limit = 6 * rt + 1;
  const at = sim.runUntilTrue(() => joiner.alive && joiner.machine.masterHostname === master.id, limit);
  if (at === null) throw new LeaseViolation('probe-bound', sim.now, `the joiner did not learn the master within ${limit} ms`);
  return at - probeStart;
}

/**
 * Wait for agreement (one master if any live server is eligible, else none) among fresh
 * servers; returns when. Fresh: connected, with a keep-alive sent after `since` acknowledged.
 * Until then a server may still act on what the faults left behind (a deadline computed from a
 * keep-alive that the slow store answered late, a freeze that ended at `since`), which may
 * change its view once more; the stable phase starts after that.
 */
function converge(
  sim: LeaseSimCluster,
  checker: LeaseChecker,
  bound: number,
  since: number,
  invariant: LeaseInvariant,
  why: string,
): number | null {
  const expectMaster = sim.live().some((node) => node.machine.eligible);
  const fresh = (node: LeaseNode): boolean =>
    node.machine.connected && node.machine.leaseValidUntil >= since + node.machine.ttlMs - safetyMarginMs(node.machine.ttlMs);
  // Every live server's members are the live servers: a crashed one's record is gone with its lease
  // (until then a stepDown may name it, and a probe would measure the wait for etcd's expiry).
  const liveEligible = (): string =>
    sim
      .live()
      .filter((node) => node.machine.eligible)
      .map((node) => node.id)
      .sort()
      .join();
  const agreed = (): boolean => {
    if (!sim.live().every(fresh)) return false;
    const members = liveEligible();
    if (!sim.live().every((node) => node.machine.eligibleMembers().join() === members)) return false;
    if (expectMaster) {
      // The same master process for all: its hostname and its term (a restarted namesake's old key may linger).
      const master = sim.agreedMaster();
      if (master === null) return false;
      const term = sim.node(master).machine.heldTerm;
      return sim.live().every((node) => node.machine.masterTerm === term);
    }
    return sim.live().every((node) => !node.machine.master && node.machine.masterHostname === '');
  };
  const at = sim.runUntilTrue(agreed, bound);
  if (at === null) {
    const views = sim
      .live()
      .map(
        (n) =>
          `${n.id}:${n.machine.master ? 'M' : n.machine.slave ? 's' : '-'}${n.machine.connected ? '' : '(unconnected)'}→${n.machine.masterHostname || "''"}`,
      );
    throw new LeaseViolation(invariant, sim.now, `not agreed within ${bound.toFixed(0)} ms ${why}: ${views.join(' ')}`);
  }
  checker.stableSince = null;
  return at;
}

function stable(sim: LeaseSimCluster, checker: LeaseChecker, ms: number): void {
  checker.stableSince = sim.now;
  sim.runFor(ms);
  checker.stableSince = null;
}
