/**
 * The probes of a stable UDP-mode cluster (sim/scenario.ts runs them once the cluster has
 * agreed and stayed stable): a graceful shutdown or a crash of the master, a joiner that sorts
 * first, a `stepDown()` or a `promote()`, each checked against its SPEC bound.
 */
import type { SimCluster, SimEventRecord, SimNode, SimNodeOptions } from './cluster';
import type { InvariantChecker } from './invariants';
import { joinerName, type RunResult, type Scenario } from './scenario-types';

/** What a probe needs of the run it belongs to. */
export interface ProbeContext {
  readonly sim: SimCluster;
  readonly checker: InvariantChecker;
  readonly scenario: Scenario;
  readonly result: RunResult;
  readonly tick: number;
  readonly tock: number;
  /** The largest one-way delay, ms. */
  readonly maxDelay: number;
  /** A server of the main cluster (not a foreign namespace's, not a second process of a hostname). */
  inMain(node: SimNode): boolean;
  /** Watch the cluster for the stable time more, then end the run. */
  endLater(): void;
}

/** Ranks first: higher priority, then the hostname that sorts first (the core's rule). */
export function byRank(a: SimNode, b: SimNode): number {
  const pa = a.core.priority;
  const pb = b.core.priority;
  if (pa !== pb) return pb - pa;
  return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0;
}

/** Let a probe see every core event, then hand it on to the observers already in place (the checker). */
function watchEvents(sim: SimCluster, fn: (record: SimEventRecord, node: SimNode) => void): void {
  const previous = sim.observer?.onEvent;
  if (!sim.observer) return;
  sim.observer.onEvent = (record, node) => {
    fn(record, node);
    previous?.(record, node);
  };
}

/** Run the scenario's probe on the agreed master `masterNode` (named `master`), now. */
export function runProbe(run: ProbeContext, master: string, masterNode: SimNode): void {
  switch (run.scenario.probe) {
    case 'graceful':
      return graceful(run, master, masterNode);
    case 'crash':
      return crash(run, master, masterNode);
    case 'join':
      return join(run, master);
    case 'stepdown':
    case 'promote':
      return handoff(run, master, masterNode);
    case 'none':
      return;
  }
}

function graceful(run: ProbeContext, master: string, masterNode: SimNode): void {
  const { sim, checker, result } = run;
  const at = sim.now;
  sim.shutdown(masterNode.id);
  checker.onConverged = (time) => {
    result.probe.value = time - at;
    run.endLater();
  };
  checker.converge(at + 100, at, 'graceful-handoff-within-100ms', `${master} shut down at ${at.toFixed(1)}`);
  sim.at(at + 100, () => checker.checkDeadline());
}

function crash(run: ProbeContext, master: string, masterNode: SimNode): void {
  const { sim, result, scenario, tick, tock, maxDelay } = run;
  // Declared with its type, so that TypeScript reads `fail` as ending the flow.
  const checker: InvariantChecker = run.checker;
  const at = sim.now;
  sim.crash(masterNode.id);
  const survivors = [...sim.nodes.values()].filter((node) => node.alive && run.inMain(node)).filter((node) => node.core.eligible);
  // Below quorum the survivors must agree on no master (checked by the agreement itself).
  const first = scenario.quorum !== undefined && survivors.length < scenario.quorum ? undefined : survivors.sort(byRank)[0];
  let heard = at;
  const became: { at: number | null } = { at: null };
  sim.at(at + maxDelay, () => {
    heard = first?.core.lastHeard(master) ?? at;
  });
  watchEvents(sim, (record, node) => {
    if (node === first && record.event.type === 'master' && became.at === null) became.at = sim.now;
  });
  checker.onConverged = (time, agreed) => {
    const firstMasterAt = became.at;
    if (first) {
      const detail = `master ${master} crashed at ${at.toFixed(1)}; ${first.id} last heard it at ${heard.toFixed(1)}`;
      if (agreed !== first.hostname)
        checker.fail(
          'crash-failover-within-tock-plus-tick',
          `${detail}; agreed on ${agreed || 'nobody'}, not on the first-sorting eligible survivor ${first.hostname}`,
        );
      if (firstMasterAt === null || firstMasterAt > heard + tock + tick)
        checker.fail('crash-failover-within-tock-plus-tick', `${detail}; it became master at ${firstMasterAt}`);
      if (time > firstMasterAt + tick)
        checker.fail(
          'crash-failover-within-tock-plus-tick',
          `${detail}; master at ${firstMasterAt.toFixed(1)} but all agreed only at ${time.toFixed(1)}`,
        );
      result.probe.value = (firstMasterAt - heard) / tick;
    }
    run.endLater();
  };
  checker.converge(
    at + maxDelay + tock + 2 * tick,
    at,
    'crash-failover-within-tock-plus-tick',
    `master ${master} crashed at ${at.toFixed(1)}`,
  );
  sim.at(at + maxDelay + tock + 2 * tick, () => checker.checkDeadline());
}

function join(run: ProbeContext, master: string): void {
  const { sim, checker, result, scenario, tick } = run;
  const at = sim.now;
  const name = joinerName(scenario);
  const options: SimNodeOptions = { eligible: true, exitOnConflict: scenario.exitOnConflict };
  // It also outranks every server by priority: joining still never takes over.
  if (scenario.hosts.some((host) => host.priority !== undefined))
    options.priority = Math.max(0, ...[...sim.nodes.values()].map((node) => node.core.priority)) + 1;
  if (scenario.quorum !== undefined) options.quorum = scenario.quorum;
  if (scenario.clusterId !== undefined) options.clusterId = scenario.clusterId;
  const joiner = sim.add(name, options);
  checker.exempt(joiner.id, master);
  sim.at(at + tick, () => {
    if (joiner.core.masterHostname !== master) {
      checker.fail(
        'joiner-learns-master-within-tick',
        `${name} joined at ${at.toFixed(1)} and names ${joiner.core.masterHostname || 'no master'} a tick later, not ${master}`,
      );
    }
    result.probe.value = learnedAt === null ? null : learnedAt - at;
  });
  let learnedAt: number | null = null;
  watchEvents(sim, (record, node) => {
    if (node === joiner && record.event.type === 'masterchange' && learnedAt === null) learnedAt = sim.now;
  });
  run.endLater();
}

function handoff(run: ProbeContext, master: string, masterNode: SimNode): void {
  const { sim, checker, result, scenario, maxDelay } = run;
  const at = sim.now;
  const others = [...sim.nodes.values()].filter((node) => node.alive && run.inMain(node) && node !== masterNode && node.core.eligible);
  // stepDown() hands the role to the server that ranks first; promote() asks for it.
  const target = scenario.probe === 'stepdown' ? others.sort(byRank)[0] : others.length > 0 ? sim.random.pick(others) : undefined;
  if (!target) {
    run.endLater();
    return;
  }
  const oldTerm = masterNode.core.term;
  const outcome: { stepdown: boolean | null; promote: boolean | null } = { stepdown: null, promote: null };
  watchEvents(sim, (record, node) => {
    const event = record.event;
    if (node === masterNode && event.type === 'stepdown' && outcome.stepdown === null)
      outcome.stepdown = event.ok && event.hostname === target.hostname;
    if (node === target && event.type === 'promote' && outcome.promote === null) outcome.promote = event.ok;
  });
  // One round trip: promote request, the master's handoff heartbeat, the new master's claim.
  const trips = scenario.probe === 'stepdown' ? 2 : 3;
  const deadline = at + trips * maxDelay + 0.01;
  const detail = `${scenario.probe} at ${at.toFixed(1)}: ${master} hands off to ${target.hostname}`;
  checker.handoff = true;
  checker.onConverged = (time, agreed) => {
    checker.handoff = false;
    result.probe.value = time - at;
    if (agreed !== target.hostname) checker.fail('handoff-within-round-trip', `${detail}; agreed on ${agreed || 'nobody'}`);
    if (target.core.term <= oldTerm) checker.fail('handoff-raises-term', `${detail}; term ${target.core.term}, was ${oldTerm}`);
    if (outcome.stepdown !== true) checker.fail('handoff-within-round-trip', `${detail}; ${master} reported no successful stepdown`);
    if (scenario.probe === 'promote' && outcome.promote !== true)
      checker.fail('handoff-within-round-trip', `${detail}; ${target.hostname} reported no successful promote`);
    run.endLater();
  };
  checker.converge(deadline, at, 'handoff-within-round-trip', detail, target.hostname);
  sim.at(deadline, () => checker.checkDeadline());
  if (scenario.probe === 'stepdown') sim.stepDown(masterNode.id);
  else sim.promote(target.id);
}
