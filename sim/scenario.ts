/**
 * Fault scenarios for the simulated UDP cluster: what a scenario is (sim/scenario-types.ts),
 * the generator that builds one from a seed (sim/scenario-seed.ts), and here the runner that
 * plays it on a `SimCluster` under the `InvariantChecker`.
 *
 * A run has three parts:
 *  1. the fault phase: servers start (a cold start over `spread`, late joiners later) and
 *     the scenario's faults happen; only the always-true invariants are checked;
 *  2. quiet (see invariants.ts): the cluster must agree within the SPEC bound, then stay
 *     stable for `stableTicks`;
 *  3. a probe of the stable cluster (sim/probes.ts: graceful shutdown of the master, crash of
 *     the master, a first-sorting joiner, a handoff), each with its own SPEC bound, then
 *     `stableTicks` more.
 *
 * Every step below schedules on the simulation in the order the seed's replay depends on
 * (the event heap breaks ties by the order things were scheduled, and faults draw from the
 * simulation's Random): reorder them and the sweep tables change.
 */
import type { CoreEvent } from '../src/elector/types';
import { SimCluster, type SimNode, type SimNodeOptions } from './cluster';
import { InvariantChecker, Violation } from './invariants';
import { ScenarioFaults } from './faults';
import { SimWork } from './work';
import { byRank, runProbe, type ProbeContext } from './probes';
import { faultEndTicks, isBenign, type Fault, type RunOptions, type RunResult, type Scenario } from './scenario-types';

export * from './scenario-types';
export { scenarioFromSeed, seedShape, type SeedOptions } from './scenario-seed';

export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const started = performance.now();
  const run = new ScenarioRun(scenario, options);
  run.play(options.maxSteps ?? Infinity);
  return run.report(started);
}

/** The agreement deadline after quiet, with the reasons that set it (printed on a violation). */
interface Bound {
  deadline: number;
  freshAt: number;
  reasons: string[];
  expectMaster: string | null;
}

export class ScenarioRun implements ProbeContext {
  readonly sim: SimCluster;
  readonly checker: InvariantChecker;
  readonly result: RunResult;
  readonly tick: number;
  readonly tock: number;
  readonly maxDelay: number;
  readonly work: SimWork | null;
  readonly #mainCluster: string;
  readonly #faults: ScenarioFaults;
  #done = false;
  #preemption: PreemptionWatch | null = null;

  constructor(
    readonly scenario: Scenario,
    options: RunOptions,
  ) {
    this.tick = scenario.tickMs;
    this.tock = this.tick * scenario.checkBeats;
    this.maxDelay = scenario.latencyMs + scenario.jitterMs;
    this.#mainCluster = scenario.clusterId ?? '';
    this.sim = new SimCluster({
      seed: scenario.seed,
      tickMs: this.tick,
      checkBeats: scenario.checkBeats,
      latencyMs: scenario.latencyMs,
      jitterMs: scenario.jitterMs,
      trace: options.trace ?? false,
      traceLevel: options.traceLevel ?? 6,
      keepEvents: false,
    });
    this.checker = new InvariantChecker(
      this.sim,
      scenario.hosts.filter((host) => host.locked).map((host) => host.name),
    );
    this.result = {
      scenario,
      violation: null,
      quietAt: NaN,
      deadline: NaN,
      convergenceTicks: null,
      master: '',
      liveEligible: [],
      probe: { probe: scenario.probe, value: null },
      simulatedMs: 0,
      steps: 0,
      wallMs: 0,
      timeline: this.sim.timeline,
    };
    this.#addServers();
    this.checker.mainCluster = this.#mainCluster;
    this.work = this.#startWork();
    this.#watchWorkAndPreemption();
    this.#watchQuorum();
    this.#faults = new ScenarioFaults(this);
    this.#faults.schedule();
    this.sim.at(this.#faultEnd() * this.tick, () => this.#faultsOver());
  }

  inMain(node: SimNode): boolean {
    return (node.options.clusterId ?? '') === this.#mainCluster && node.id === node.hostname;
  }

  endLater(): void {
    this.sim.at(this.sim.now + this.scenario.stableTicks * this.tick, () => this.#finish());
  }

  /** Run to the end (every phase has a deadline; the limit only guards against a runner bug). */
  play(maxSteps: number): void {
    const { sim, scenario } = this;
    const limit = (this.#faultEnd() + 10 * scenario.checkBeats + 4 * scenario.stableTicks + 20) * this.tick;
    try {
      while (!this.#done && sim.now < limit) {
        sim.runUntil(Math.min(limit, sim.now + this.tick / 4));
        if (sim.steps > maxSteps) throw new Violation('no-exception', sim.now, `more than ${maxSteps} steps`);
      }
      if (!this.#done) throw new Violation('agreed-within-bound', sim.now, 'the run did not finish (runner limit)');
    } catch (err) {
      this.result.violation = asViolation(err, sim.now);
      sim.note('*', `VIOLATION ${this.result.violation.message}`);
    }
  }

  report(started: number): RunResult {
    const { result, sim, work } = this;
    result.simulatedMs = sim.now;
    result.steps = sim.steps;
    result.wallMs = performance.now() - started;
    if (work)
      result.work = {
        accepted: work.store.accepted,
        refused: work.store.refused,
        abortedRoleLost: work.aborted.roleLost,
        abortedDrainTimeout: work.aborted.drainTimeout,
        drains: work.drains,
      };
    if (this.scenario.preemptDelayTicks !== undefined) result.preemptions = this.#preemption?.count ?? 0;
    return result;
  }

  #finish(): void {
    this.#done = true;
  }

  // ---- servers, master work, quorum --------------------------------------------------------

  #addServers(): void {
    const { sim, scenario, tick } = this;
    for (const host of scenario.hosts) {
      const options: SimNodeOptions = { eligible: host.eligible, exitOnConflict: scenario.exitOnConflict, at: host.startAt * tick };
      if (host.priority !== undefined) options.priority = host.priority;
      if (scenario.work) options.drainMs = scenario.work.drainTicks * tick;
      if (scenario.preemptDelayTicks !== undefined) options.preemptDelayMs = scenario.preemptDelayTicks * tick;
      if (scenario.quorum !== undefined) options.quorum = scenario.quorum;
      if (scenario.clusterId !== undefined) options.clusterId = scenario.clusterId;
      sim.add(host.name, options);
    }
    const foreign = scenario.foreign;
    if (!foreign) return;
    for (const host of foreign.hosts) {
      // Its own machine (node id), its hostname on the wire, possibly one the main cluster uses too.
      sim.add(`${host.name}@${foreign.clusterId || 'default'}`, {
        hostname: host.name,
        clusterId: foreign.clusterId,
        eligible: host.eligible,
        exitOnConflict: scenario.exitOnConflict,
        at: host.startAt * tick,
      });
    }
  }

  /** Master work on every server of the main cluster (sim/work.ts), watched beside the checker. */
  #startWork(): SimWork | null {
    const { sim, scenario, tick, checker } = this;
    if (!scenario.work) return null;
    const work = new SimWork(
      sim,
      {
        everyMs: scenario.work.everyTicks * tick,
        minTaskMs: scenario.work.minTaskTicks * tick,
        maxTaskMs: scenario.work.maxTaskTicks * tick,
        drainMs: scenario.work.drainTicks * tick,
        careless: scenario.work.careless,
        fenced: scenario.work.fenced !== false,
      },
      (invariant, detail) => checker.fail(invariant, detail),
    );
    for (const node of sim.nodes.values()) if ((node.options.clusterId ?? '') === this.#mainCluster) work.schedule(node);
    return work;
  }

  #watchWorkAndPreemption(): void {
    const { sim, scenario, work } = this;
    const observer = sim.observer;
    if (!observer || (!work && scenario.preemptDelayTicks === undefined)) return;
    const onEvent = observer.onEvent;
    const onLifecycle = observer.onLifecycle;
    const preemption = new PreemptionWatch(this);
    this.#preemption = preemption;
    observer.onEvent = (record, node) => {
      onEvent?.(record, node);
      if ((node.options.clusterId ?? '') !== this.#mainCluster) return;
      work?.onEvent(record.event, node);
      preemption.onEvent(record.event, node);
    };
    observer.onLifecycle = (kind, node) => {
      onLifecycle?.(kind, node);
      if (work && (kind === 'crash' || kind === 'shutdown')) work.ended(node);
    };
  }

  #watchQuorum(): void {
    const { sim, scenario, checker } = this;
    if (scenario.quorum === undefined) return;
    checker.quorumNetwork = {
      reach: (node) => {
        let count = 0;
        for (const peer of sim.nodes.values()) {
          if (
            peer.alive &&
            peer.core.eligible &&
            (peer.options.clusterId ?? '') === this.#mainCluster &&
            (peer === node || sim.link(peer.id, node.id))
          )
            count++;
        }
        return count;
      },
      deliveredBy: () => sim.lastDeliveryDue,
    };
    // Clean cuts only (no loss, one-way link, restart or stall): the lease in the core's
    // claim rule must keep two masters from ever overlapping.
    // And only a majority quorum: two disjoint sides cannot both have one.
    const eligibleCount = scenario.hosts.filter((host) => host.eligible).length;
    // With check_beats 1 the quorum window (1.25 ticks) outlasts the lease (a tock + a tick
    // from the last heartbeat, the SPEC 4.4 bound), so a brief overlap remains possible.
    checker.quorumStrict =
      scenario.checkBeats > 1 &&
      2 * scenario.quorum > eligibleCount &&
      scenario.faults.every(
        (fault) =>
          fault.type === 'partition' || ((fault.type === 'crash' || fault.type === 'shutdown') && fault.restartAfter === undefined),
      );
  }

  /** When every fault's direct effects are over, ticks. */
  #faultEnd(): number {
    const scenario = this.scenario;
    let faultEnd = 0;
    for (const host of scenario.hosts) faultEnd = Math.max(faultEnd, host.startAt);
    // With master work, a handover on purpose first drains (up to drain time, and a tock for a
    // held promote's backstop); a stalled process drains nothing, so every stall can push the
    // handover (and a shutdown's restart) that much later (seed 27 of kind work: a shutdown
    // asked for mid-stall, restarted after quiet).
    const drainable = (fault: Fault): boolean =>
      fault.type === 'shutdown' || fault.type === 'stepdown' || fault.type === 'eligible' || fault.type === 'promote';
    let stalls = 0;
    for (const fault of scenario.faults) if (fault.type === 'stall') stalls += fault.ticks;
    const drainTicks = scenario.work ? scenario.work.drainTicks + scenario.checkBeats + stalls : 0;
    for (const fault of scenario.faults) {
      if (!isBenign(fault)) faultEnd = Math.max(faultEnd, faultEndTicks(fault, scenario.checkBeats) + (drainable(fault) ? drainTicks : 0));
    }
    if (scenario.cut) faultEnd = Math.max(faultEnd, scenario.cut.at);
    return faultEnd;
  }

  // ---- quiet, convergence, stability, probe -----------------------------------------------

  #faultsOver(): void {
    const sim = this.sim;
    this.#faults.allOver();
    let quiet = Math.max(sim.now, sim.lastDeliveryDue);
    for (const node of sim.nodes.values()) quiet = Math.max(quiet, node.stalledUntil, node.backlog.end);
    // A microsecond later: fault times are sums of floats (2.31 ticks + 2.54 ticks), and a
    // restart due "at" faultEnd may land a hair after it; quiet must follow every fault.
    sim.at(quiet + 0.001, () => this.#enterQuiet());
  }

  #enterQuiet(): void {
    const { sim, checker, result } = this;
    const quietAt = sim.now;
    result.quietAt = quietAt;
    sim.note('*', `QUIET (network stable, all faults over); checking agreement`);
    // Safety only while a second process still claims a hostname (two live processes with
    // one name cannot both be "the" server the invariants speak of). Once it has left, every
    // invariant applies again (seed 270 found the live one removed after its namesake died).
    const sharedNow = this.#faults.sharedHostnames();
    if (sharedNow.length > 0) {
      const deadline = quietAt + this.tock + this.tick;
      result.deadline = deadline;
      checker.deadline = deadline;
      checker.sharedHostnames(sharedNow);
      sim.at(deadline, () => checker.checkDeadline());
      sim.at(deadline + this.scenario.stableTicks * this.tick, () => this.#finish());
      return;
    }
    const { deadline, freshAt, reasons, expectMaster } = this.#agreementBound(quietAt);
    checker.watchTerms();
    result.deadline = deadline;
    checker.onConverged = (time, master) => this.#agreed(quietAt, time, master);
    checker.converge(deadline, freshAt, 'agreed-within-bound', `deadline is the latest of: ${reasons.join('; ')}`, expectMaster);
    sim.at(deadline, () => checker.checkDeadline());
    sim.at(freshAt, () => checker.checkDeadline());
  }

  /** When the cluster must agree after quiet (SPEC 4.7, 4.2, 4.4, 4.13, 4.14, 8, 13), and when it is fresh. */
  #agreementBound(quietAt: number): Bound {
    const { sim, scenario, tick, tock, maxDelay } = this;
    // SPEC 4.7 counts its tock from a network on which every live server hears every other;
    // counted from T_quiet that takes a heartbeat round (a tick + the largest delay) and one
    // answer (the largest delay again). With check_beats 1 a tock is only the heartbeat
    // interval, so "T_quiet + 1 tock" alone would be unreachable (seed 1777).
    const bound: Bound = { deadline: 0, freshAt: quietAt + tick + maxDelay, reasons: [], expectMaster: null };
    bound.deadline = Math.max(quietAt + tock, bound.freshAt + maxDelay, sim.lastStartAt + tock + tick);
    bound.reasons.push(
      `quiet + max(tock, tick + 2 × max delay) = ${Math.max(quietAt + tock, bound.freshAt + maxDelay).toFixed(1)}`,
      `last start ${sim.lastStartAt.toFixed(1)} + tock + tick`,
    );
    const later = (at: number, reason: string): void => {
      if (at <= bound.deadline) return;
      bound.deadline = at;
      bound.reasons.push(reason);
    };
    if (scenario.quorum !== undefined) {
      // A server back above quorum hears the others' next heartbeats (a tick after quiet),
      // then listens half a tick for a master before it claims: with check_beats 1 that is
      // more than the single-tick tock.
      const healed = quietAt + 1.5 * tick + 2 * maxDelay;
      later(healed, `quorum regained: quiet + 1.5 ticks + 2 × max delay = ${healed.toFixed(1)}`);
    }
    for (const ended of sim.ended) {
      const heard = ended.instance.lastDelivered ?? ended.at;
      later(
        heard + tock + 2 * tick,
        `${ended.id} (${ended.how} at ${ended.at.toFixed(1)}) last heard ${heard.toFixed(1)} + tock + 2 ticks`,
      );
    }
    if (scenario.cut) {
      // Under a cut that stays (SPEC 4.13): a tock and a tick, as for a cold start, for a claim
      // where none is heard; a tick more for the followers' word to reach the far side; and
      // one more round for a master that learns of another through it to yield.
      const cutBound = quietAt + tock + 3 * tick + 4 * maxDelay;
      later(cutBound, `a cut that stays: quiet + tock + 3 ticks + 4 × max delay = ${cutBound.toFixed(1)}`);
      // Nor is the cluster fresh before the cut has taken effect everywhere: until a server's
      // deadline for each server across the cut (a tock and at most a quarter tick) has passed
      // and the followers' word (a tick or two) has reached it, its view may still change.
      bound.freshAt = Math.max(bound.freshAt, quietAt + tock + 2.25 * tick + 2 * maxDelay);
    }
    this.#forgerBound(bound, later);
    this.#preemptionBound(bound);
    return bound;
  }

  #forgerBound(bound: Bound, later: (at: number, reason: string) => void): void {
    const { scenario, tick, tock, maxDelay } = this;
    const forgeries = scenario.faults.filter((fault) => fault.type === 'forge');
    if (forgeries.length === 0) return;
    // Whatever the forger made the servers believe (a claim, a namesake, an instance it
    // impersonated) was last heard when it stopped and lapses when any silent server
    // would: a tock and a quarter tick later. That is also when the real server behind an
    // impersonated hostname is followed again, with its last heartbeat, so a conflict it
    // was hidden in is seen and resolved at once: one delivery, and one answer.
    const forgedUntil = Math.max(...forgeries.map((fault) => fault.until)) * tick;
    const settled = forgedUntil + tock + 1.25 * tick + 2 * maxDelay;
    // Nor is the cluster fresh (every server heard as it is) before the forged state lapsed.
    bound.freshAt = Math.max(bound.freshAt, forgedUntil + tock + 1.25 * tick + maxDelay);
    this.checker.forgedUntil = forgedUntil + tock + 0.25 * tick;
    later(settled, `forger stopped ${forgedUntil.toFixed(1)} + tock + 1.25 ticks + 2 × max delay`);
  }

  /**
   * Preemption: the first in rank of the live eligible servers ends up master, once it has
   * followed the one agreed on for the delay, plus a handoff (SPEC 4.14).
   */
  #preemptionBound(bound: Bound): void {
    const { sim, scenario, tick, maxDelay } = this;
    if (scenario.preemptDelayTicks === undefined) return;
    const first = [...sim.nodes.values()].filter((node) => node.alive && this.inMain(node) && node.core.eligible).sort(byRank)[0];
    if (!first) return;
    bound.expectMaster = first.hostname;
    const preempted = bound.deadline + scenario.preemptDelayTicks * tick + tick + 4 * maxDelay;
    bound.deadline = preempted;
    bound.reasons.push(`preemption by ${first.hostname}: + the delay, a tick and 4 × max delay = ${preempted.toFixed(1)}`);
  }

  #agreed(quietAt: number, time: number, master: string): void {
    const { sim, scenario, checker, result, tick, tock, maxDelay } = this;
    result.convergenceTicks = Math.max(0, time - quietAt) / tick;
    result.master = master;
    result.liveEligible = [...sim.nodes.values()]
      .filter((node) => node.alive && node.core.eligible && this.inMain(node))
      .map((node) => node.hostname);
    sim.note('*', `AGREED on ${master || 'no master'} (${((time - quietAt) / tick).toFixed(3)} ticks after quiet)`);
    // A cut that stays is a fault: the first-sorting server may be the one cut off from the others.
    const noFaults = scenario.faults.every(isBenign) && !scenario.cut;
    const starts = scenario.hosts.map((host) => host.startAt);
    const spreadMs = (Math.max(...starts) - Math.min(...starts)) * tick;
    if (noFaults && spreadMs + maxDelay < tock) {
      const eligible = [...sim.nodes.values()].filter((node) => this.inMain(node) && node.core.eligible);
      const expected = eligible.length < (scenario.quorum ?? 0) ? '' : (eligible.sort(byRank)[0]?.hostname ?? '');
      if (master !== expected)
        checker.fail('cold-start-first-sorting-wins', `cold start elected ${master || 'nobody'}, expected ${expected || 'nobody'}`);
    }
    sim.at(sim.now + scenario.stableTicks * tick, () => this.#startProbe());
  }

  #startProbe(): void {
    const { sim, checker, scenario } = this;
    if (this.#faults.healCut()) {
      // The heal of a cut that stayed must change nothing: the stable watch goes on through it.
      sim.at(sim.now + scenario.stableTicks * this.tick, () => this.#startProbe());
      return;
    }
    const master = checker.agreedMaster;
    const masterNode = master ? sim.nodes.get(master) : undefined;
    if (scenario.probe === 'none' || !masterNode?.alive) {
      this.#finish();
      return;
    }
    sim.note('*', `PROBE ${scenario.probe} (master ${master})`);
    runProbe(this, master, masterNode);
  }
}

/**
 * Preemption requests checked as they are made (SPEC 4.14): at most one per delay from each
 * server, none before the master has held the role for the delay, and only from a server
 * that ranks before the master.
 */
class PreemptionWatch {
  /** Per hostname: when it last became master after another server had been (the role moved to it). */
  readonly #movedAt = new Map<string, number>();
  readonly #lastPreempt = new Map<string, number>();
  #lastHolder = '';
  /** Preemption requests made. */
  count = 0;

  constructor(readonly run: ScenarioRun) {}

  onEvent(event: CoreEvent, node: SimNode): void {
    const { sim, checker, scenario, tick } = this.run;
    if (event.type === 'master' && node.hostname !== this.#lastHolder) {
      this.#movedAt.set(node.hostname, sim.now);
      this.#lastHolder = node.hostname;
    }
    if (event.type !== 'preempt' || scenario.preemptDelayTicks === undefined) return;
    this.count++;
    const delay = scenario.preemptDelayTicks * tick;
    const since = this.#movedAt.get(event.master) ?? -Infinity;
    if (sim.now - since < delay - 1e-6)
      checker.fail(
        'preempt-once-per-delay',
        `${node.id} preempts ${event.master}, master since ${since.toFixed(1)} ms, ${(sim.now - since).toFixed(1)} ms ago (delay ${delay} ms)`,
      );
    const previous = this.#lastPreempt.get(node.id) ?? -Infinity;
    if (sim.now - previous < delay - 1e-6)
      checker.fail(
        'preempt-once-per-delay',
        `${node.id} preempts again ${(sim.now - previous).toFixed(1)} ms after its last request (delay ${delay} ms)`,
      );
    this.#lastPreempt.set(node.id, sim.now);
    const master = sim.nodes.get(event.master);
    if (master && byRank(node, master) >= 0)
      checker.fail('preempt-once-per-delay', `${node.id} preempts ${event.master}, which ranks before it`);
  }
}

/** What a run that threw ends with: a violation naming the invariant (a livelock, or any exception). */
export function asViolation(err: unknown, now: number): Violation {
  if (err instanceof Violation) return err;
  if (err instanceof Error && err.message.startsWith('livelock')) return new Violation('no-livelock', now, err.message);
  return new Violation('no-exception', now, err instanceof Error ? (err.stack ?? err.message) : String(err));
}
