/**
 * What a UDP-mode scenario is: a plain data description of one run (so a property-based test
 * can generate and shrink it, and a failing one can be saved as JSON), its fault kinds, and
 * what a run reports. The generator from a seed is sim/scenario-seed.ts, the runner
 * sim/scenario.ts.
 *
 * All times in a scenario are in ticks (fractions allowed), so bounds read the same for
 * every `heartbeat_freq`.
 */
import type { Violation } from './invariants';

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
export function isBenign(fault: Fault): boolean {
  return fault.type === 'wallstep';
}

/** When a fault's direct effects are over, ticks. */
export function faultEndTicks(fault: Fault, checkBeats: number): number {
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

export interface RunOptions {
  trace?: boolean;
  /** Core log level shown in the timeline (6: state changes, 10: every packet). */
  traceLevel?: number;
  /** Stop with a violation after this many simulation steps (debugging a storm). */
  maxSteps?: number;
}

/** A hostname that sorts before every host of the scenario. */
export function joinerName(scenario: Scenario): string {
  const first = scenario.hosts.map((host) => host.name).sort()[0] ?? 'a';
  return first > '0join' ? '0join' : `0${first}`;
}

export function describeWindow(fault: Extract<Fault, { type: 'partition' | 'oneway' | 'net' | 'link' }>, scenario: Scenario): string {
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
