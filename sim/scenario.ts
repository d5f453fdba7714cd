/**
 * Fault scenarios for the simulated cluster: a plain data description of one run (so a
 * property-based test can generate and shrink it, and a failing one can be saved as
 * JSON), a generator that builds one from a seed, and the runner that plays it on a
 * `SimCluster` under the `InvariantChecker`.
 *
 * A run has three parts:
 *  1. the fault phase: servers start (a cold start over `spread`, late joiners later) and
 *     the scenario's faults happen; only the always-true invariants are checked;
 *  2. quiet (see invariants.ts): the cluster must agree within the SPEC bound, then stay
 *     stable for `stableTicks`;
 *  3. a probe of the stable cluster (graceful shutdown of the master, crash of the master,
 *     or a first-sorting joiner), each with its own SPEC bound, then `stableTicks` more.
 *
 * All times in a scenario are in ticks (fractions allowed), so bounds read the same for
 * every `heartbeat_freq`.
 */
import { SimCluster, linkKey, type LinkFault, type NetworkFaults, type SimEventRecord, type SimNode, type SimNodeOptions } from './cluster';
import { InvariantChecker, Violation } from './invariants';
import { Random } from './random';
import { Forger } from './forger';
import { SimWork } from './work';

export const KINDS = [
  'none',
  'loss',
  'dup',
  'reorder',
  'spike',
  'partition',
  'oneway',
  'crash',
  'shutdown',
  'restart',
  'stall',
  'wallstep',
  'eligibility',
  'join',
  'duphost',
  'mixed',
  // The election features (priority, quorum, handoff, namespaces), each with faults of its own kind drawn alongside.
  'priority',
  'quorum',
  'handoff',
  'namespace',
  // Holding at the edges: a forger on the LAN of an open cluster, and long freezes.
  'forger',
  'freeze',
  // Partial connectivity (faults of single directions of single links, cuts that stay), and API calls racing each other.
  'link',
  'race',
  // Master work through exclusive() with a fenced store (sim/work.ts), frozen masters above all; preemption and flapping servers.
  'work',
  'preempt',
] as const;
export type Kind = (typeof KINDS)[number];

/**
 * What `mixed` combines. A fixed list, not derived from KINDS, so that adding a kind
 * leaves every existing seed's scenario as it was.
 */
const MIXABLE: readonly Kind[] = [
  'loss',
  'dup',
  'reorder',
  'spike',
  'partition',
  'oneway',
  'crash',
  'shutdown',
  'restart',
  'stall',
  'wallstep',
  'eligibility',
  'join',
];

/** Cluster sizes of the sweep table. */
export const SIZES = [2, 3, 5, 16, 100] as const;

/** Probes every kind draws from (a fixed list: new probes must not change old seeds). */
export const PROBES = ['none', 'graceful', 'crash', 'join'] as const;
/** Probes of a manual handoff: `stepDown()` on the master, `promote()` on another eligible server. */
export const HANDOFF_PROBES = ['stepdown', 'promote'] as const;
export type Probe = (typeof PROBES)[number] | (typeof HANDOFF_PROBES)[number];

export interface HostSpec {
  name: string;
  eligible: boolean;
  /** Every server marks this one's record `locked` as soon as it appears. */
  locked: boolean;
  /** Start time, ticks. */
  startAt: number;
  /** `priority` (absent: 0, the original's behaviour). */
  priority?: number;
}

/** A second cluster sharing the network and port under another `cluster_id`. */
export interface ForeignCluster {
  clusterId: string;
  /** Hostnames may repeat the main cluster's: the namespaces must keep them apart. */
  hosts: HostSpec[];
}

/** A host index, or "the current master" (resolved when the fault happens; a live server if none). */
export type Target = number | 'master';

export type Fault =
  /** Kill without notice; with `restartAfter`, a new process of that hostname starts that many ticks later. */
  | { type: 'crash'; at: number; target: Target; restartAfter?: number }
  /** Graceful shutdown (notice sent); optionally a new process later. */
  | { type: 'shutdown'; at: number; target: Target; restartAfter?: number }
  /** Same hostname, new process (new instance id), `delay` ticks after the old one ended. */
  | { type: 'restart'; at: number; target: Target; graceful: boolean; delay: number }
  /** The server's timers and socket reads are held back for `ticks` (CPU starvation, paused VM). */
  | { type: 'stall'; at: number; target: Target; ticks: number }
  /** Step one server's wall clock by `ms` (its monotonic clock is untouched). */
  | { type: 'wallstep'; at: number; target: Target; ms: number }
  | { type: 'eligible'; at: number; target: Target; eligible: boolean }
  /** Until `until`, a server hears only servers of its own group (`groups[hostIndex]`; hosts past the end: group 0). */
  | { type: 'partition'; at: number; until: number; groups: number[] }
  /** Until `until`, datagrams from any host in `from` to any host in `to` are dropped (the reverse direction works). */
  | { type: 'oneway'; at: number; until: number; from: number[]; to: number[] }
  /** Until `until`, per-datagram loss, duplication, reordering and delay spikes (rates 0..1, delays in ticks). */
  | {
      type: 'net';
      at: number;
      until: number;
      loss: number;
      dup: number;
      dupTicks: number;
      reorder: number;
      reorderTicks: number;
      spike: number;
      spikeTicks: number;
    }
  /** A second process calling itself the target's hostname starts; it ends at `until` (crash or shutdown), or never (null). */
  | { type: 'duphost'; at: number; target: Target; until: number | null; stop: 'crash' | 'shutdown' }
  /**
   * Until `until`, one direction of one link (host `from` to host `to`): datagrams lost with
   * probability `drop` (1: a one-way cut), delayed by `delayTicks` more, duplicated with
   * probability `dup` (the copy lagging up to `dupTicks`).
   */
  | { type: 'link'; at: number; until: number; from: number; to: number; drop: number; delayTicks: number; dup: number; dupTicks: number }
  /** A config reload of one server's heartbeat_freq (the scenario's × `tickFactor`) and check_beats. */
  | { type: 'timing'; at: number; target: Target; tickFactor: number; checkBeats: number }
  /** `stepDown()` on the current master (nothing if there is none). */
  | { type: 'stepdown'; at: number }
  /** `promote()` on a server. */
  | { type: 'promote'; at: number; target: Target }
  /** A config reload giving a server another `priority`. */
  | { type: 'priority'; at: number; target: Target; priority: number }
  /**
   * Until `until`, a forger on the LAN sends `perTick` accepted packets a tick (in bursts of
   * up to `burst` at one instant): any field at any value the decoder accepts, forged and
   * real hostnames, sniffed instance ids, replays (sim/forger.ts).
   */
  | { type: 'forge'; at: number; until: number; perTick: number; burst: number };

export interface Scenario {
  seed: number;
  kind: Kind | 'custom';
  tickMs: number;
  checkBeats: number;
  latencyMs: number;
  jitterMs: number;
  exitOnConflict: boolean;
  hosts: HostSpec[];
  faults: Fault[];
  probe: Probe;
  /** How long the stable cluster is watched (after agreement, and again after the probe). */
  stableTicks: number;
  /** `quorum` of every server of the main cluster (absent: none). */
  quorum?: number;
  /** `cluster_id` of the main cluster (absent: the default, the original's packets). */
  clusterId?: string;
  /** Another cluster on the same network and port. */
  foreign?: ForeignCluster;
  /**
   * A cut that stays: from `at` (ticks), each pair of hosts stops hearing each other both
   * ways, while every one of them still hears a server that hears the other (a
   * non-transitive cut). It lasts through quiet and the stable watch, which the cluster
   * must reach under it; it heals before the probe, and the heal must change nothing.
   */
  cut?: { at: number; pairs: Array<[number, number]> };
  /**
   * Master work on every server of the main cluster (sim/work.ts): a scheduler through
   * exclusive(), tasks that commit to a fenced store; times in ticks. Handovers on purpose
   * (stepDown, shutdown, eligibility, a promote request) drain first.
   */
  work?: { everyTicks: number; minTaskTicks: number; maxTaskTicks: number; drainTicks: number; careless: number; fenced?: boolean };
  /** Preemption on every server of the main cluster, with this delay (ticks). */
  preemptDelayTicks?: number;
}

export interface ProbeResult {
  probe: Probe;
  /** graceful: ms to agree; crash: ticks from the last heartbeat heard to the new master; join: ms to learn the master. */
  value: number | null;
}

export interface RunResult {
  scenario: Scenario;
  violation: Violation | null;
  /** T_quiet, ms. */
  quietAt: number;
  /** The agreement deadline from T_quiet, ms. */
  deadline: number;
  /** Ticks from T_quiet to agreement; null when not measured (violation, or shared hostname). */
  convergenceTicks: number | null;
  master: string;
  /** Hostnames of the live eligible servers when the cluster first agreed after the faults. */
  liveEligible: string[];
  probe: ProbeResult;
  simulatedMs: number;
  steps: number;
  wallMs: number;
  timeline: string[];
  /** With `work`: commits the fenced store accepted and refused, tasks aborted, drains. */
  work?: { accepted: number; refused: number; abortedRoleLost: number; abortedDrainTimeout: number; drains: number };
  /** With `preemptDelayTicks`: requests made by preemption. */
  preemptions?: number;
}

/** Network faults that break "quiet"; wall steps do not (SPEC 4.9). */
function isBenign(fault: Fault): boolean {
  return fault.type === 'wallstep';
}

/** When a fault's direct effects are over, ticks. */
function faultEndTicks(fault: Fault, checkBeats: number): number {
  switch (fault.type) {
    case 'crash':
    case 'shutdown':
      return fault.at + (fault.restartAfter ?? 0);
    case 'restart':
      return fault.at + fault.delay;
    case 'stall':
      return fault.at + fault.ticks;
    case 'partition':
    case 'oneway':
    case 'net':
    case 'link':
    case 'forge':
      return Math.max(fault.at, fault.until);
    case 'duphost':
      // A second process that crashes goes on answering for its hostname, in the others'
      // tables, until they notice its silence (a tock and a quarter tick): the hostname
      // looks agreed on while it is not yet (seed 98). A shutdown notice acts at once.
      if (fault.until !== null && fault.stop === 'crash') return Math.max(fault.at, fault.until) + checkBeats + 0.25;
      return Math.max(fault.at, fault.until ?? fault.at);
    case 'stepdown':
    case 'promote':
      // A handoff is an operation with a tock to complete; its target may have died meanwhile.
      return fault.at + checkBeats;
    default:
      return fault.at;
  }
}

const CLEAN: NetworkFaults = { lossRate: 0, dupRate: 0, dupDelayMs: 0, reorderRate: 0, reorderMaxMs: 0, spikeRate: 0, spikeMs: 0 };

export interface RunOptions {
  trace?: boolean;
  /** Core log level shown in the timeline (6: state changes, 10: every packet). */
  traceLevel?: number;
  /** Stop with a violation after this many simulation steps (debugging a storm). */
  maxSteps?: number;
}

export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const started = performance.now();
  const tick = scenario.tickMs;
  const tock = tick * scenario.checkBeats;
  const maxDelay = scenario.latencyMs + scenario.jitterMs;
  const sim = new SimCluster({
    seed: scenario.seed,
    tickMs: tick,
    checkBeats: scenario.checkBeats,
    latencyMs: scenario.latencyMs,
    jitterMs: scenario.jitterMs,
    trace: options.trace ?? false,
    traceLevel: options.traceLevel ?? 6,
    keepEvents: false,
  });
  const checker: InvariantChecker = new InvariantChecker(
    sim,
    scenario.hosts.filter((host) => host.locked).map((host) => host.name),
  );
  const result: RunResult = {
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
    timeline: sim.timeline,
  };
  let done = false;
  const finish = (): void => {
    done = true;
  };

  // ---- servers ----
  const hostIndex = new Map<string, number>();
  const mainCluster = scenario.clusterId ?? '';
  scenario.hosts.forEach((host, index) => {
    hostIndex.set(host.name, index);
    const options: SimNodeOptions = { eligible: host.eligible, exitOnConflict: scenario.exitOnConflict, at: host.startAt * tick };
    if (host.priority !== undefined) options.priority = host.priority;
    if (scenario.work) options.drainMs = scenario.work.drainTicks * tick;
    if (scenario.preemptDelayTicks !== undefined) options.preemptDelayMs = scenario.preemptDelayTicks * tick;
    if (scenario.quorum !== undefined) options.quorum = scenario.quorum;
    if (scenario.clusterId !== undefined) options.clusterId = scenario.clusterId;
    sim.add(host.name, options);
  });
  const foreign = scenario.foreign;
  if (foreign) {
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
  checker.mainCluster = mainCluster;
  // ---- master work and preemption, watched beside the checker ----
  const work = scenario.work
    ? new SimWork(
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
      )
    : null;
  if (work) for (const node of sim.nodes.values()) if ((node.options.clusterId ?? '') === mainCluster) work.schedule(node);
  let preemptions = 0;
  /** Per hostname: when it last became master after another server had been (the role moved to it). */
  const movedAt = new Map<string, number>();
  let lastHolder = '';
  const lastPreempt = new Map<string, number>();
  const observer = sim.observer;
  if (observer && (work || scenario.preemptDelayTicks !== undefined)) {
    const onEvent = observer.onEvent;
    const onLifecycle = observer.onLifecycle;
    observer.onEvent = (record, node) => {
      onEvent?.(record, node);
      if ((node.options.clusterId ?? '') !== mainCluster) return;
      const event = record.event;
      work?.onEvent(event, node);
      if (event.type === 'master' && node.hostname !== lastHolder) {
        movedAt.set(node.hostname, sim.now);
        lastHolder = node.hostname;
      }
      if (event.type === 'preempt' && scenario.preemptDelayTicks !== undefined) {
        preemptions++;
        const delay = scenario.preemptDelayTicks * tick;
        const since = movedAt.get(event.master) ?? -Infinity;
        if (sim.now - since < delay - 1e-6)
          checker.fail(
            'preempt-once-per-delay',
            `${node.id} preempts ${event.master}, master since ${since.toFixed(1)} ms, ${(sim.now - since).toFixed(1)} ms ago (delay ${delay} ms)`,
          );
        const previous = lastPreempt.get(node.id) ?? -Infinity;
        if (sim.now - previous < delay - 1e-6)
          checker.fail(
            'preempt-once-per-delay',
            `${node.id} preempts again ${(sim.now - previous).toFixed(1)} ms after its last request (delay ${delay} ms)`,
          );
        lastPreempt.set(node.id, sim.now);
        const master = sim.nodes.get(event.master);
        if (master && byRank(node, master) >= 0)
          checker.fail('preempt-once-per-delay', `${node.id} preempts ${event.master}, which ranks before it`);
      }
    };
    observer.onLifecycle = (kind, node) => {
      onLifecycle?.(kind, node);
      if (work && (kind === 'crash' || kind === 'shutdown')) work.ended(node);
    };
  }
  if (scenario.quorum !== undefined) {
    checker.quorumNetwork = {
      reach(node) {
        let count = 0;
        for (const peer of sim.nodes.values()) {
          if (
            peer.alive &&
            peer.core.eligible &&
            (peer.options.clusterId ?? '') === mainCluster &&
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
  // Partitions cut by hostname: a foreign server sits with the main server of its name (group 0 if none).
  const indexOf = (id: string): number => hostIndex.get(sim.nodes.get(id)?.hostname ?? id) ?? 0;
  const inMain = (node: SimNode): boolean => (node.options.clusterId ?? '') === mainCluster && node.id === node.hostname;
  /** Ranks first: higher priority, then the hostname that sorts first (the core's rule). */
  const byRank = (a: SimNode, b: SimNode): number => {
    const pa = a.core.priority;
    const pb = b.core.priority;
    if (pa !== pb) return pb - pa;
    return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0;
  };

  // ---- faults ----
  type Window = Extract<Fault, { type: 'partition' | 'oneway' | 'net' | 'link' }>;
  const windows = new Set<Window>();
  let cutActive = false;
  const applyWindows = (): void => {
    const faults: NetworkFaults = { ...CLEAN };
    const cuts: Window[] = [];
    sim.linkFaults.clear();
    for (const w of windows) {
      if (w.type === 'link') {
        const from = scenario.hosts[w.from]?.name;
        const to = scenario.hosts[w.to]?.name;
        if (from === undefined || to === undefined) continue;
        const key = linkKey(from, to);
        const before: LinkFault = sim.linkFaults.get(key) ?? { drop: 0, delayMs: 0, dup: 0, dupDelayMs: 0 };
        sim.linkFaults.set(key, {
          drop: Math.max(before.drop, w.drop),
          delayMs: Math.max(before.delayMs, w.delayTicks * tick),
          dup: Math.max(before.dup, w.dup),
          dupDelayMs: Math.max(before.dupDelayMs, w.dupTicks * tick),
        });
      } else if (w.type === 'net') {
        faults.lossRate = Math.max(faults.lossRate, w.loss);
        faults.dupRate = Math.max(faults.dupRate, w.dup);
        faults.dupDelayMs = Math.max(faults.dupDelayMs, w.dupTicks * tick);
        faults.reorderRate = Math.max(faults.reorderRate, w.reorder);
        faults.reorderMaxMs = Math.max(faults.reorderMaxMs, w.reorderTicks * tick);
        faults.spikeRate = Math.max(faults.spikeRate, w.spike);
        faults.spikeMs = Math.max(faults.spikeMs, w.spikeTicks * tick);
      } else {
        cuts.push(w);
      }
    }
    sim.faults = faults;
    checker.networkChanged();
    const staying = cutActive && scenario.cut ? scenario.cut.pairs : [];
    if (cuts.length === 0 && staying.length === 0) {
      sim.link = () => true;
      return;
    }
    const oneways = cuts
      .filter((w): w is Extract<Window, { type: 'oneway' }> => w.type === 'oneway')
      .map((w) => ({ from: new Set(w.from), to: new Set(w.to) }));
    const partitions = cuts.filter((w): w is Extract<Window, { type: 'partition' }> => w.type === 'partition');
    sim.link = (from, to) => {
      const a = indexOf(from);
      const b = indexOf(to);
      for (const p of partitions) if ((p.groups[a] ?? 0) !== (p.groups[b] ?? 0)) return false;
      for (const o of oneways) if (o.from.has(a) && o.to.has(b)) return false;
      for (const [x, y] of staying) if ((a === x && b === y) || (a === y && b === x)) return false;
      return true;
    };
  };

  const resolve = (target: Target): SimNode | null => {
    if (target !== 'master') {
      const host = scenario.hosts[target];
      const node = host ? sim.nodes.get(host.name) : undefined;
      return node ?? null;
    }
    const live = [...sim.nodes.values()].filter((node) => node.alive && inMain(node));
    const master = live.find((node) => node.core.master);
    if (master) return master;
    return live.length > 0 ? sim.random.pick(live) : null;
  };

  const dupNodes: SimNode[] = [];
  const play = (fault: Fault): void => {
    switch (fault.type) {
      case 'crash':
      case 'shutdown': {
        const node = resolve(fault.target);
        if (!node || !node.alive) return;
        const end = (): void => {
          if (!node.alive) return;
          if (fault.type === 'crash') sim.crash(node.id);
          else sim.shutdown(node.id);
          // Scheduled now, so the start is due before anything scheduled later for the same instant.
          if (fault.restartAfter !== undefined) sim.restart(node.id, { delayMs: fault.restartAfter * tick });
        };
        // With master work, a graceful shutdown drains first (the component's shutdown does).
        if (fault.type === 'shutdown' && work) work.shutdown(node, end);
        else end();
        return;
      }
      case 'restart': {
        const node = resolve(fault.target);
        if (!node || !node.alive) return;
        sim.restart(node.id, { graceful: fault.graceful, delayMs: fault.delay * tick });
        return;
      }
      case 'stall': {
        const node = resolve(fault.target);
        if (node?.alive) sim.stall(node.id, fault.ticks * tick);
        return;
      }
      case 'wallstep': {
        const node = resolve(fault.target);
        if (node) sim.stepWallClock(node.id, fault.ms);
        return;
      }
      case 'eligible': {
        const node = resolve(fault.target);
        if (node && work) work.setEligible(node, fault.eligible);
        else if (node) sim.setEligible(node.id, fault.eligible);
        return;
      }
      case 'partition':
      case 'oneway':
      case 'net':
      case 'link': {
        windows.add(fault);
        sim.note('*', `NET ${describeWindow(fault, scenario)}`);
        applyWindows();
        sim.at(Math.max(fault.until, fault.at) * tick, () => {
          windows.delete(fault);
          sim.note('*', `NET ends: ${describeWindow(fault, scenario)}`);
          applyWindows();
        });
        return;
      }
      case 'duphost': {
        const original = resolve(fault.target);
        if (!original) return;
        const dup = sim.addDuplicate(original.hostname, { ...original.options, eligible: original.core.eligible, at: sim.now });
        dupNodes.push(dup);
        if (fault.until !== null) {
          sim.at(Math.max(fault.until, fault.at) * tick, () => {
            if (fault.stop === 'crash') sim.crash(dup.id);
            else sim.shutdown(dup.id);
          });
        }
        return;
      }
      case 'stepdown': {
        const node = resolve('master');
        if (node?.alive && node.core.master && work) work.stepDown(node);
        else if (node?.alive && node.core.master) sim.stepDown(node.id);
        return;
      }
      case 'promote': {
        const node = resolve(fault.target);
        if (node?.alive) sim.promote(node.id);
        return;
      }
      case 'priority': {
        const node = resolve(fault.target);
        if (node) sim.setPriority(node.id, fault.priority);
        return;
      }
      case 'timing': {
        const node = resolve(fault.target);
        if (node) sim.setNodeTiming(node.id, fault.tickFactor * tick, fault.checkBeats);
        return;
      }
      case 'forge': {
        const forger = new Forger(sim.random, {
          hostnames: scenario.hosts.map((host) => host.name),
          iidOf: (hostname) => {
            const node = sim.nodes.get(hostname);
            return node?.alive ? node.core.instanceId : undefined;
          },
          tickMs: tick,
        });
        sim.note(
          '*',
          `FORGER starts: ${fault.perTick} packets a tick, bursts up to ${fault.burst}, until ${(fault.until * tick).toFixed(1)} ms`,
        );
        checker.forgedUntil = Math.max(checker.forgedUntil, fault.until * tick + tock + 0.25 * tick);
        const end = fault.until * tick;
        const speak = (): void => {
          if (sim.now >= end) {
            sim.note('*', 'FORGER stops');
            return;
          }
          for (let i = sim.random.int(1, fault.burst); i > 0; i--) sim.inject(forger.next(), { address: '10.66.66.66' });
          sim.at(sim.now + (sim.random.next() * 2 * tick) / fault.perTick, speak);
        };
        speak();
        return;
      }
    }
  };
  for (const fault of scenario.faults) sim.at(fault.at * tick, () => play(fault));
  const staying = scenario.cut;
  if (staying) {
    sim.at(staying.at * tick, () => {
      cutActive = true;
      sim.note(
        '*',
        `CUT that stays: ${staying.pairs.map(([a, b]) => `${scenario.hosts[a]?.name ?? a}-/-${scenario.hosts[b]?.name ?? b}`).join(', ')}`,
      );
      applyWindows();
    });
  }
  // API calls alone (no network fault, no stall): every handoff must stay clean (SPEC 9.3).
  checker.handoffStrict =
    scenario.kind === 'race' &&
    scenario.faults.every((fault) => ['stepdown', 'promote', 'eligible', 'timing', 'priority'].includes(fault.type));

  // ---- quiet, convergence, stability, probe ----
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
  if (staying) faultEnd = Math.max(faultEnd, staying.at);
  const starts = scenario.hosts.map((host) => host.startAt);
  // A cut that stays is a fault: the first-sorting server may be the one cut off from the others.
  const noFaults = scenario.faults.every(isBenign) && !scenario.cut;
  const spreadMs = (Math.max(...starts) - Math.min(...starts)) * tick;

  const enterQuiet = (): void => {
    const quietAt = sim.now;
    result.quietAt = quietAt;
    sim.note('*', `QUIET (network stable, all faults over); checking agreement`);
    // Safety only while a second process still claims a hostname (two live processes with
    // one name cannot both be "the" server the invariants speak of). Once it has left, every
    // invariant applies again (seed 270 found the live one removed after its namesake died).
    const sharedNow = dupNodes.filter((node) => node.alive).map((node) => node.hostname);
    if (sharedNow.length > 0) {
      const deadline = quietAt + tock + tick;
      result.deadline = deadline;
      checker.deadline = deadline;
      checker.sharedHostnames(sharedNow);
      sim.at(deadline, () => checker.checkDeadline());
      sim.at(deadline + scenario.stableTicks * tick, finish);
      return;
    }
    // SPEC 4.7 counts its tock from a network on which every live server hears every other;
    // counted from T_quiet that takes a heartbeat round (a tick + the largest delay) and one
    // answer (the largest delay again). With check_beats 1 a tock is only the heartbeat
    // interval, so "T_quiet + 1 tock" alone would be unreachable (seed 1777).
    let freshAt = quietAt + tick + maxDelay;
    let deadline = Math.max(quietAt + tock, freshAt + maxDelay, sim.lastStartAt + tock + tick);
    const reasons = [
      `quiet + max(tock, tick + 2 × max delay) = ${Math.max(quietAt + tock, freshAt + maxDelay).toFixed(1)}`,
      `last start ${sim.lastStartAt.toFixed(1)} + tock + tick`,
    ];
    if (scenario.quorum !== undefined) {
      // A server back above quorum hears the others' next heartbeats (a tick after quiet),
      // then listens half a tick for a master before it claims: with check_beats 1 that is
      // more than the single-tick tock.
      const healed = quietAt + 1.5 * tick + 2 * maxDelay;
      if (healed > deadline) {
        deadline = healed;
        reasons.push(`quorum regained: quiet + 1.5 ticks + 2 × max delay = ${healed.toFixed(1)}`);
      }
    }
    for (const ended of sim.ended) {
      const heard = ended.instance.lastDelivered ?? ended.at;
      if (heard + tock + 2 * tick > deadline) {
        deadline = heard + tock + 2 * tick;
        reasons.push(`${ended.id} (${ended.how} at ${ended.at.toFixed(1)}) last heard ${heard.toFixed(1)} + tock + 2 ticks`);
      }
    }
    if (staying) {
      // Under a cut that stays (SPEC 4.13): a tock and a tick, as for a cold start, for a claim
      // where none is heard; a tick more for the followers' word to reach the far side; and
      // one more round for a master that learns of another through it to yield.
      const cutBound = quietAt + tock + 3 * tick + 4 * maxDelay;
      if (cutBound > deadline) {
        deadline = cutBound;
        reasons.push(`a cut that stays: quiet + tock + 3 ticks + 4 × max delay = ${cutBound.toFixed(1)}`);
      }
      // Nor is the cluster fresh before the cut has taken effect everywhere: until a server's
      // deadline for each server across the cut (a tock and at most a quarter tick) has passed
      // and the followers' word (a tick or two) has reached it, its view may still change.
      freshAt = Math.max(freshAt, quietAt + tock + 2.25 * tick + 2 * maxDelay);
    }
    const forgeries = scenario.faults.filter((fault) => fault.type === 'forge');
    if (forgeries.length > 0) {
      // Whatever the forger made the servers believe (a claim, a namesake, an instance it
      // impersonated) was last heard when it stopped and lapses when any silent server
      // would: a tock and a quarter tick later. That is also when the real server behind an
      // impersonated hostname is followed again, with its last heartbeat, so a conflict it
      // was hidden in is seen and resolved at once: one delivery, and one answer.
      const forgedUntil = Math.max(...forgeries.map((fault) => fault.until)) * tick;
      const settled = forgedUntil + tock + 1.25 * tick + 2 * maxDelay;
      // Nor is the cluster fresh (every server heard as it is) before the forged state lapsed.
      freshAt = Math.max(freshAt, forgedUntil + tock + 1.25 * tick + maxDelay);
      checker.forgedUntil = forgedUntil + tock + 0.25 * tick;
      if (settled > deadline) {
        deadline = settled;
        reasons.push(`forger stopped ${forgedUntil.toFixed(1)} + tock + 1.25 ticks + 2 × max delay`);
      }
    }
    let expectMaster: string | null = null;
    if (scenario.preemptDelayTicks !== undefined) {
      // Preemption: the first in rank of the live eligible servers ends up master, once it has
      // followed the one agreed on for the delay, plus a handoff (SPEC 4.14).
      const first = [...sim.nodes.values()].filter((node) => node.alive && inMain(node) && node.core.eligible).sort(byRank)[0];
      if (first) {
        expectMaster = first.hostname;
        const preempted = deadline + scenario.preemptDelayTicks * tick + tick + 4 * maxDelay;
        deadline = preempted;
        reasons.push(`preemption by ${first.hostname}: + the delay, a tick and 4 × max delay = ${preempted.toFixed(1)}`);
      }
    }
    checker.watchTerms();
    result.deadline = deadline;
    checker.onConverged = (time, master) => {
      result.convergenceTicks = Math.max(0, time - quietAt) / tick;
      result.master = master;
      result.liveEligible = [...sim.nodes.values()]
        .filter((node) => node.alive && node.core.eligible && inMain(node))
        .map((node) => node.hostname);
      sim.note('*', `AGREED on ${master || 'no master'} (${((time - quietAt) / tick).toFixed(3)} ticks after quiet)`);
      if (noFaults && spreadMs + maxDelay < tock) {
        const eligible = [...sim.nodes.values()].filter((node) => inMain(node) && node.core.eligible);
        const expected = eligible.length < (scenario.quorum ?? 0) ? '' : (eligible.sort(byRank)[0]?.hostname ?? '');
        if (master !== expected)
          checker.fail('cold-start-first-sorting-wins', `cold start elected ${master || 'nobody'}, expected ${expected || 'nobody'}`);
      }
      sim.at(sim.now + scenario.stableTicks * tick, startProbe);
    };
    checker.converge(deadline, freshAt, 'agreed-within-bound', `deadline is the latest of: ${reasons.join('; ')}`, expectMaster);
    sim.at(deadline, () => checker.checkDeadline());
    sim.at(freshAt, () => checker.checkDeadline());
  };

  /** Let a probe see every core event, then hand it on to the observers already in place (the checker). */
  const watchEvents = (fn: (record: SimEventRecord, node: SimNode) => void): void => {
    const previous = sim.observer?.onEvent;
    if (!sim.observer) return;
    sim.observer.onEvent = (record, node) => {
      fn(record, node);
      previous?.(record, node);
    };
  };

  const startProbe = (): void => {
    if (cutActive) {
      // The heal of a cut that stayed must change nothing: the stable watch goes on through it.
      cutActive = false;
      sim.note('*', 'CUT HEALED (the stable watch goes on)');
      applyWindows();
      sim.at(sim.now + scenario.stableTicks * tick, startProbe);
      return;
    }
    const master = checker.agreedMaster;
    const masterNode = master ? sim.nodes.get(master) : undefined;
    const endLater = (): void => {
      sim.at(sim.now + scenario.stableTicks * tick, finish);
    };
    if (scenario.probe === 'none' || !masterNode?.alive) {
      finish();
      return;
    }
    const at = sim.now;
    sim.note('*', `PROBE ${scenario.probe} (master ${master})`);
    switch (scenario.probe) {
      case 'graceful': {
        sim.shutdown(masterNode.id);
        checker.onConverged = (time) => {
          result.probe.value = time - at;
          endLater();
        };
        checker.converge(at + 100, at, 'graceful-handoff-within-100ms', `${master} shut down at ${at.toFixed(1)}`);
        sim.at(at + 100, () => checker.checkDeadline());
        return;
      }
      case 'crash': {
        sim.crash(masterNode.id);
        const survivors = [...sim.nodes.values()].filter((node) => node.alive && inMain(node)).filter((node) => node.core.eligible);
        // Below quorum the survivors must agree on no master (checked by the agreement itself).
        const first = scenario.quorum !== undefined && survivors.length < scenario.quorum ? undefined : survivors.sort(byRank)[0];
        let heard = at;
        const became: { at: number | null } = { at: null };
        sim.at(at + maxDelay, () => {
          heard = first?.core.lastHeard(master) ?? at;
        });
        watchEvents((record, node) => {
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
          endLater();
        };
        checker.converge(
          at + maxDelay + tock + 2 * tick,
          at,
          'crash-failover-within-tock-plus-tick',
          `master ${master} crashed at ${at.toFixed(1)}`,
        );
        sim.at(at + maxDelay + tock + 2 * tick, () => checker.checkDeadline());
        return;
      }
      case 'join': {
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
        watchEvents((record, node) => {
          if (node === joiner && record.event.type === 'masterchange' && learnedAt === null) learnedAt = sim.now;
        });
        endLater();
        return;
      }
      case 'stepdown':
      case 'promote': {
        const others = [...sim.nodes.values()].filter((node) => node.alive && inMain(node) && node !== masterNode && node.core.eligible);
        // stepDown() hands the role to the server that ranks first; promote() asks for it.
        const target = scenario.probe === 'stepdown' ? others.sort(byRank)[0] : others.length > 0 ? sim.random.pick(others) : undefined;
        if (!target) {
          endLater();
          return;
        }
        const oldTerm = masterNode.core.term;
        const outcome: { stepdown: boolean | null; promote: boolean | null } = { stepdown: null, promote: null };
        watchEvents((record, node) => {
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
          endLater();
        };
        checker.converge(deadline, at, 'handoff-within-round-trip', detail, target.hostname);
        sim.at(deadline, () => checker.checkDeadline());
        if (scenario.probe === 'stepdown') sim.stepDown(masterNode.id);
        else sim.promote(target.id);
        return;
      }
    }
  };

  sim.at(faultEnd * tick, () => {
    windows.clear();
    applyWindows();
    let quiet = Math.max(sim.now, sim.lastDeliveryDue);
    for (const node of sim.nodes.values()) quiet = Math.max(quiet, node.stalledUntil, node.backlog.end);
    // A microsecond later: fault times are sums of floats (2.31 ticks + 2.54 ticks), and a
    // restart due "at" faultEnd may land a hair after it; quiet must follow every fault.
    sim.at(quiet + 0.001, enterQuiet);
  });

  // A run always ends: every phase has a deadline. The limit only guards against a runner bug.
  const limit = (faultEnd + 10 * scenario.checkBeats + 4 * scenario.stableTicks + 20) * tick;
  try {
    const maxSteps = options.maxSteps ?? Infinity;
    while (!done && sim.now < limit) {
      sim.runUntil(Math.min(limit, sim.now + tick / 4));
      if (sim.steps > maxSteps) throw new Violation('no-exception', sim.now, `more than ${maxSteps} steps`);
    }
    if (!done) throw new Violation('agreed-within-bound', sim.now, 'the run did not finish (runner limit)');
  } catch (err) {
    if (err instanceof Violation) result.violation = err;
    else if (err instanceof Error && err.message.startsWith('livelock'))
      result.violation = new Violation('no-livelock', sim.now, err.message);
    else result.violation = new Violation('no-exception', sim.now, err instanceof Error ? (err.stack ?? err.message) : String(err));
    sim.note('*', `VIOLATION ${result.violation.message}`);
  }
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
  if (scenario.preemptDelayTicks !== undefined) result.preemptions = preemptions;
  return result;
}

/** A hostname that sorts before every host of the scenario. */
export function joinerName(scenario: Scenario): string {
  const first = scenario.hosts.map((host) => host.name).sort()[0] ?? 'a';
  return first > '0join' ? '0join' : `0${first}`;
}

function describeWindow(fault: Extract<Fault, { type: 'partition' | 'oneway' | 'net' | 'link' }>, scenario: Scenario): string {
  const name = (index: number): string => scenario.hosts[index]?.name ?? `#${index}`;
  switch (fault.type) {
    case 'partition': {
      const groups = new Map<number, string[]>();
      scenario.hosts.forEach((host, index) => {
        const group = fault.groups[index] ?? 0;
        groups.set(group, [...(groups.get(group) ?? []), host.name]);
      });
      return `partition ${[...groups.values()].map((g) => g.join(',')).join(' | ')}`;
    }
    case 'oneway':
      return `one-way cut ${fault.from.map(name).join(',')} -/-> ${fault.to.map(name).join(',')}`;
    case 'link':
      return `link ${name(fault.from)} -> ${name(fault.to)}: drop ${fault.drop.toFixed(2)} delay ${fault.delayTicks.toFixed(2)} ticks dup ${fault.dup.toFixed(2)}/${fault.dupTicks.toFixed(2)} ticks`;
    case 'net':
      return `loss ${fault.loss.toFixed(2)} dup ${fault.dup.toFixed(2)} reorder ${fault.reorder.toFixed(2)}/${fault.reorderTicks.toFixed(2)} ticks spike ${fault.spike.toFixed(2)}/${fault.spikeTicks.toFixed(2)} ticks`;
  }
}

// ---- generation from a seed ----

const round = (value: number): number => Math.round(value * 1000) / 1000;

export interface SeedOptions {
  kind?: Kind;
  n?: number;
}

/** The kind and size a sweep seed stands for: every kind at every size, in turn. */
export function seedShape(seed: number): { kind: Kind; n: number } {
  const kind = KINDS[seed % KINDS.length] as Kind;
  const n = SIZES[Math.floor(seed / KINDS.length) % SIZES.length] as number;
  return { kind, n };
}

export function scenarioFromSeed(seed: number, options: SeedOptions = {}): Scenario {
  const shape = seedShape(seed);
  const kind = options.kind ?? shape.kind;
  const n = options.n ?? shape.n;
  const r = new Random((seed * 2654435761) ^ 0x5bd1e995);
  const checkBeats = r.pick([1, 2, 3, 3, 3, 4, 5]);
  const tickMs = r.pick([100, 1000, 1000, 1000, 20000]);
  const tockTicks = checkBeats;
  const spread =
    kind === 'none' || kind === 'wallstep' ? r.pick([0, r.next() * tockTicks * 0.6, r.next() * 2 * tockTicks]) : r.next() * 2 * tockTicks;

  const names = new Set<string>();
  const digits = n > 200 ? 4 : 3;
  while (names.size < n) names.add(`s${r.hex(digits)}`);
  const hosts: HostSpec[] = [...names].map((name) => ({ name, eligible: r.chance(0.8), locked: false, startAt: round(r.next() * spread) }));
  if (r.chance(0.95) && !hosts.some((host) => host.eligible)) r.pick(hosts).eligible = true;
  if (r.chance(0.3)) {
    for (let i = r.int(1, 2); i > 0; i--) r.pick(hosts).locked = true;
  }
  const window = round(spread + tockTicks * (1 + r.next() * 4));
  const scenario: Scenario = {
    seed,
    kind,
    tickMs,
    checkBeats,
    latencyMs: r.pick([0.1, 0.5, 1, 2, 5]),
    jitterMs: round(r.next() * 5),
    exitOnConflict: r.chance(0.15),
    hosts,
    faults: [],
    probe: r.pick(PROBES),
    stableTicks: 2 * checkBeats + 4,
  };
  const kinds: Kind[] = kind === 'mixed' ? pickSome(r, MIXABLE, r.int(2, 4)) : [kind];
  for (const k of kinds) addFaults(scenario, k, r, window);
  scenario.faults.sort((a, b) => a.at - b.at);
  return scenario;
}

function pickSome<T>(r: Random, items: readonly T[], count: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(r.int(0, pool.length - 1), 1)[0] as T);
  return out;
}

function addFaults(s: Scenario, kind: Kind, r: Random, window: number): void {
  const n = s.hosts.length;
  const tock = s.checkBeats;
  const at = (): number => round(r.next() * window);
  const target = (masterBias = 0.5): Target => (r.chance(masterBias) ? 'master' : r.int(0, n - 1));
  const duration = (): number => round(0.2 + r.next() * 3 * tock);
  const subset = (): number[] => {
    const size = r.int(1, Math.max(1, n - 1));
    return pickSome(r, [...Array(n).keys()], size).sort((a, b) => a - b);
  };
  const net = (fields: Partial<Extract<Fault, { type: 'net' }>>): Fault => {
    const start = at();
    return {
      type: 'net',
      at: start,
      until: round(start + duration()),
      loss: 0,
      dup: 0,
      dupTicks: 0,
      reorder: 0,
      reorderTicks: 0,
      spike: 0,
      spikeTicks: 0,
      ...fields,
    };
  };
  const times = (min: number, max: number): number => r.int(min, max);
  switch (kind) {
    case 'none':
    case 'mixed':
      return;
    case 'loss':
      for (let i = times(1, 3); i > 0; i--) s.faults.push(net({ loss: round(0.05 + r.next() * 0.85) }));
      return;
    case 'dup':
      for (let i = times(1, 3); i > 0; i--) s.faults.push(net({ dup: round(0.1 + r.next() * 0.9), dupTicks: round(r.next() * 2) }));
      return;
    case 'reorder':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push(net({ reorder: round(0.1 + r.next() * 0.6), reorderTicks: round(0.1 + r.next() * 3) }));
      return;
    case 'spike':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push(net({ spike: round(0.02 + r.next() * 0.5), spikeTicks: round(0.5 + r.next() * 2 * tock) }));
      return;
    case 'partition':
      for (let i = times(1, 4); i > 0; i--) {
        const start = at();
        const groupCount = r.int(2, Math.min(4, n));
        s.faults.push({
          type: 'partition',
          at: start,
          until: round(start + duration()),
          groups: s.hosts.map(() => r.int(0, groupCount - 1)),
        });
      }
      return;
    case 'oneway':
      for (let i = times(1, 4); i > 0; i--) {
        const start = at();
        s.faults.push({ type: 'oneway', at: start, until: round(start + duration()), from: subset(), to: subset() });
      }
      return;
    case 'crash':
    case 'shutdown':
      for (let i = times(1, 3); i > 0; i--) {
        const fault: Extract<Fault, { type: 'crash' | 'shutdown' }> = { type: kind, at: at(), target: target() };
        if (r.chance(0.5)) fault.restartAfter = round(r.next() * 2 * tock);
        s.faults.push(fault);
      }
      return;
    case 'restart':
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push({ type: 'restart', at: at(), target: target(), graceful: r.chance(0.5), delay: r.chance(0.5) ? 0 : round(r.next()) });
      return;
    case 'stall':
      for (let i = times(1, 4); i > 0; i--) s.faults.push({ type: 'stall', at: at(), target: target(), ticks: round(0.05 + r.next() * 6) });
      return;
    case 'wallstep':
      // Also during the stable phase that follows: wall steps must change nothing (SPEC 4.9).
      for (let i = times(2, 8); i > 0; i--) {
        s.faults.push({
          type: 'wallstep',
          at: round(r.next() * (window + 4 * tock + 10)),
          target: target(0.3),
          ms: Math.round((r.chance(0.5) ? 1 : -1) * (1000 + r.next() * 7_199_000)),
        });
      }
      return;
    case 'eligibility':
      for (let i = times(1, 6); i > 0; i--) s.faults.push({ type: 'eligible', at: at(), target: target(0.4), eligible: r.chance(0.5) });
      return;
    case 'join': {
      const joiners = r.int(1, Math.max(1, Math.floor(n / 2)));
      for (const index of pickSome(r, [...Array(n).keys()], joiners)) {
        const host = s.hosts[index] as HostSpec;
        host.startAt = round(r.next() * window);
      }
      return;
    }
    case 'duphost':
      for (let i = n > 10 ? times(1, 2) : 1; i > 0; i--) {
        const start = at();
        s.faults.push({
          type: 'duphost',
          at: start,
          target: target(),
          until: r.chance(0.5) ? null : round(start + duration()),
          stop: r.chance(0.5) ? 'crash' : 'shutdown',
        });
      }
      return;
    case 'priority':
      // Equal priorities are common (the original's rule decides among them), and reloads change them.
      for (const host of s.hosts) host.priority = r.pick([0, 0, 1, 2, 5]);
      addFaults(s, r.pick(['crash', 'shutdown', 'partition', 'restart', 'eligibility', 'join', 'stall'] as const), r, window);
      for (let i = times(0, 2); i > 0; i--)
        s.faults.push({ type: 'priority', at: at(), target: target(0.3), priority: r.pick([0, 1, 2, 5, 10]) });
      return;
    case 'quorum': {
      // Usually a majority of the eligible servers; sometimes any count, up to all of them.
      const eligible = s.hosts.filter((host) => host.eligible).length;
      if (eligible === 0) return;
      s.quorum = r.chance(0.8) ? Math.floor(eligible / 2) + 1 : r.int(1, eligible);
      for (const sub of pickSome(r, ['partition', 'partition', 'oneway', 'crash', 'shutdown', 'restart', 'stall'] as const, r.int(1, 2)))
        addFaults(s, sub, r, window);
      return;
    }
    case 'handoff':
      for (let i = times(1, 4); i > 0; i--)
        s.faults.push(r.chance(0.5) ? { type: 'stepdown', at: at() } : { type: 'promote', at: at(), target: r.int(0, n - 1) });
      if (r.chance(0.5)) addFaults(s, r.pick(['loss', 'crash', 'partition', 'stall', 'reorder'] as const), r, window);
      s.probe = r.pick(HANDOFF_PROBES);
      return;
    case 'forger': {
      for (let i = times(1, 2); i > 0; i--) {
        const start = at();
        // Every forged packet reaches every server: in big clusters fewer of them, so a run
        // stays minutes, not hours (the servers' behaviour per packet is what is tested).
        const scale = n > 16 ? 0.1 : 1;
        s.faults.push({
          type: 'forge',
          at: start,
          until: round(start + duration()),
          perTick: Math.max(1, Math.round(r.pick([1, 5, 20, 100]) * scale)),
          burst: Math.max(1, Math.round(r.pick([1, 1, 10, 50]) * scale)),
        });
      }
      if (r.chance(0.5)) addFaults(s, r.pick(['crash', 'shutdown', 'restart', 'eligibility', 'join', 'loss'] as const), r, window);
      return;
    }
    case 'freeze':
      // A process stopped for up to five tocks (SIGSTOP, a paused VM, a long GC), the master
      // most often; its socket keeps what arrives meanwhile and is read when it wakes.
      for (let i = times(1, 3); i > 0; i--)
        s.faults.push({ type: 'stall', at: at(), target: target(0.7), ticks: round(0.5 + r.next() * 5 * tock) });
      if (r.chance(0.3)) addFaults(s, r.pick(['crash', 'loss', 'join'] as const), r, window);
      return;
    case 'link': {
      // Single directions of single links: lost (flaky, or a one-way cut), slowed, duplicated;
      // and cuts of both directions between two servers that both still hear the others.
      if (n < 2) return;
      for (let i = times(1, 5); i > 0; i--) {
        const from = r.int(0, n - 1);
        const to = (from + r.int(1, n - 1)) % n;
        const start = at();
        const base = {
          type: 'link' as const,
          at: start,
          until: round(start + duration()),
          from,
          to,
          drop: 0,
          delayTicks: 0,
          dup: 0,
          dupTicks: 0,
        };
        switch (r.pick(['drop', 'drop', 'cut', 'cut', 'delay', 'dup'] as const)) {
          case 'drop':
            s.faults.push({ ...base, drop: r.chance(0.5) ? 1 : round(0.1 + r.next() * 0.9) });
            break;
          case 'cut':
            s.faults.push({ ...base, drop: 1 }, { ...base, from: to, to: from, drop: 1 });
            break;
          case 'delay':
            s.faults.push({ ...base, delayTicks: round(0.01 + r.next() * r.pick([0.1, 0.5, 2])) });
            break;
          case 'dup':
            s.faults.push({ ...base, dup: round(0.2 + r.next() * 0.8), dupTicks: round(r.next() * 2) });
            break;
        }
      }
      // Half the runs with three servers or more: a cut that stays. One server (the bridge)
      // hears and is heard by everyone; up to four pairs of the others never hear each other.
      if (n >= 3 && r.chance(0.5)) {
        const bridge = r.int(0, n - 1);
        const others = [...Array(n).keys()].filter((index) => index !== bridge);
        const pairs: Array<[number, number]> = [];
        for (let k = r.int(1, Math.min(4, others.length - 1)); k > 0; k--) {
          const [a, b] = pickSome(r, others, 2) as [number, number];
          if (!pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) pairs.push([Math.min(a, b), Math.max(a, b)]);
        }
        s.cut = { at: at(), pairs };
        // The bridge must stay: a server that exits on a conflict could be it, and no word crosses a cut without one.
        s.exitOnConflict = false;
      }
      return;
    }
    case 'race': {
      // Bursts of API calls, at one instant or within a fiftieth of a tick of each other, on
      // several servers: stepDown() on the master, promote(), eligibility, timing reloads
      // (heartbeat_freq a quarter to four times the scenario's, any check_beats). Every server
      // reloaded goes back to the scenario's timing at the end, one after another.
      const reloaded = new Set<number>();
      for (let burst = times(1, 5); burst > 0; burst--) {
        const start = at();
        for (let k = r.int(1, Math.min(n, 4)); k > 0; k--) {
          const when = round(start + (r.chance(0.5) ? 0 : r.next() * 0.02));
          switch (r.pick(['stepdown', 'promote', 'promote', 'eligible', 'timing'] as const)) {
            case 'stepdown':
              s.faults.push({ type: 'stepdown', at: when });
              break;
            case 'promote':
              s.faults.push({ type: 'promote', at: when, target: r.int(0, n - 1) });
              break;
            case 'eligible':
              s.faults.push({ type: 'eligible', at: when, target: target(0.3), eligible: r.chance(0.6) });
              break;
            case 'timing': {
              const host = r.int(0, n - 1);
              reloaded.add(host);
              s.faults.push({ type: 'timing', at: when, target: host, tickFactor: r.pick([0.25, 0.5, 1, 2, 4]), checkBeats: r.int(1, 5) });
              break;
            }
          }
        }
      }
      for (const host of reloaded)
        s.faults.push({ type: 'timing', at: round(window + 0.5 + r.next() * 2), target: host, tickFactor: 1, checkBeats: s.checkBeats });
      s.probe = r.pick([...PROBES, ...HANDOFF_PROBES]);
      return;
    }
    case 'work': {
      // Master work on every server, through exclusive(), committing to a fenced store. The
      // master is frozen mid-task most of all (past a failover, then woken: its overdue task
      // ends and commits in either order with its election's timer), and handed over on purpose.
      const ticks = r.pick([0.05, 0.2, 1, 3]);
      s.work = {
        everyTicks: round(ticks * (0.2 + r.next())),
        minTaskTicks: round(ticks * r.next()),
        maxTaskTicks: round(ticks * (1 + r.next() * 2)),
        drainTicks: round(r.pick([0.1, 1, 3, 10]) * ticks + r.next()),
        careless: r.pick([0, 0.5, 1]),
      };
      for (let i = times(1, 4); i > 0; i--)
        s.faults.push({ type: 'stall', at: at(), target: target(0.8), ticks: round(0.2 + r.next() * 3 * tock) });
      for (let i = times(0, 3); i > 0; i--) {
        switch (r.pick(['stepdown', 'promote', 'shutdown', 'eligible'] as const)) {
          case 'stepdown':
            s.faults.push({ type: 'stepdown', at: at() });
            break;
          case 'promote':
            s.faults.push({ type: 'promote', at: at(), target: r.int(0, n - 1) });
            break;
          case 'shutdown':
            s.faults.push({ type: 'shutdown', at: at(), target: target(0.7), restartAfter: round(r.next() * 2 * tock) });
            break;
          case 'eligible': {
            const when = at();
            const host = target(0.7);
            s.faults.push(
              { type: 'eligible', at: when, target: host, eligible: false },
              { type: 'eligible', at: round(when + r.next() * 2 * tock), target: host, eligible: true },
            );
            break;
          }
        }
      }
      if (r.chance(0.5)) addFaults(s, r.pick(['crash', 'partition', 'loss', 'restart'] as const), r, window);
      // Probes that hand over measure the election's round trip; with work they would wait for a drain.
      s.probe = r.pick(['none', 'graceful', 'crash'] as const);
      return;
    }
    case 'preempt': {
      // Preemption on every server; priorities make one of them first. The first in rank flaps
      // (restarts, crashes, freezes), joins late, or is cut off; the role must move to it at most
      // once per delay, and end with it.
      s.preemptDelayTicks = round(r.pick([0.5, 1, 2, 4]) * tock);
      for (const host of s.hosts) host.priority = r.pick([0, 0, 1, 2, 5]);
      for (const host of s.hosts) host.eligible = true;
      const top = s.hosts.reduce(
        (best, host, index) =>
          (host.priority ?? 0) > (s.hosts[best]?.priority ?? 0) ||
          ((host.priority ?? 0) === (s.hosts[best]?.priority ?? 0) && host.name < (s.hosts[best]?.name ?? ''))
            ? index
            : best,
        0,
      );
      if (r.chance(0.5)) (s.hosts[top] as HostSpec).startAt = round(r.next() * window);
      for (let i = times(1, 5); i > 0; i--) {
        const when = at();
        switch (r.pick(['restart', 'restart', 'crash', 'stall', 'partition'] as const)) {
          case 'restart':
            s.faults.push({ type: 'restart', at: when, target: top, graceful: r.chance(0.5), delay: round(r.next()) });
            break;
          case 'crash':
            s.faults.push({ type: 'crash', at: when, target: r.chance(0.5) ? top : 'master', restartAfter: round(r.next() * 2 * tock) });
            break;
          case 'stall':
            s.faults.push({ type: 'stall', at: when, target: r.chance(0.5) ? top : 'master', ticks: round(0.2 + r.next() * 2 * tock) });
            break;
          case 'partition':
            s.faults.push({
              type: 'partition',
              at: when,
              until: round(when + duration()),
              groups: s.hosts.map((_, index) => (index === top ? 1 : 0)),
            });
            break;
        }
      }
      if (r.chance(0.3)) addFaults(s, r.pick(['loss', 'join', 'eligibility'] as const), r, window);
      s.probe = r.pick(['none', 'graceful', 'crash'] as const);
      return;
    }
    case 'namespace': {
      // A second cluster on the same port, under another cluster_id; some of its hostnames are ours.
      s.clusterId = r.pick(['', 'blue']);
      const ours = s.hosts.map((host) => host.name);
      const names = new Set<string>();
      for (let i = Math.min(n, r.int(2, 5)); i > 0; i--) names.add(r.chance(0.5) ? r.pick(ours) : `f${r.hex(3)}`);
      const spread = Math.max(...s.hosts.map((host) => host.startAt));
      s.foreign = {
        clusterId: s.clusterId === '' ? 'green' : r.pick(['', 'green']),
        hosts: [...names].map((name) => ({ name, eligible: r.chance(0.8), locked: false, startAt: round(r.next() * spread) })),
      };
      addFaults(s, r.pick(['crash', 'shutdown', 'partition', 'restart', 'loss', 'join'] as const), r, window);
      return;
    }
  }
}
