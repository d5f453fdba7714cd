/**
 * What an etcd-mode scenario is (sim/lease-scenario.ts runs it): its fault kinds, sizes and
 * probes, the invariants a run checks, and what a run reports.
 */
export const LEASE_KINDS = [
  'none',
  'crash',
  'restart',
  'shutdown',
  'freeze',
  'outage',
  'cut',
  'slow',
  'eligibility',
  'handoff',
  'leader',
  'stall',
  'restore',
  'wipe',
  'mixed',
] as const;
export type LeaseKind = (typeof LEASE_KINDS)[number];
export const LEASE_SIZES = [2, 3, 5, 7] as const;
export const LEASE_PROBES = ['none', 'crash', 'graceful', 'freeze', 'stepdown', 'promote', 'join'] as const;
export type LeaseProbe = (typeof LEASE_PROBES)[number];

export type LeaseInvariant =
  | 'no-exception'
  | 'single-master-in-store-truth'
  | 'terms-increase'
  | 'ineligible-never-master'
  | 'no-master-while-store-down'
  | 'resume-slave-first'
  | 'converges'
  | 'stable-no-flap'
  | 'cold-start-rank'
  | 'probe-bound'
  | 'leader-change-no-flap'
  | 'checkpoint-kept';

export class LeaseViolation extends Error {
  constructor(
    readonly invariant: LeaseInvariant,
    readonly time: number,
    readonly detail: string,
  ) {
    super(`${invariant} at ${time.toFixed(1)} ms: ${detail}`);
    this.name = 'LeaseViolation';
  }
}

export interface LeaseHost {
  name: string;
  eligible: boolean;
  priority: number;
  /** ms */
  startAt: number;
}

export type LeaseFault =
  | { type: 'crash'; at: number; host: number; restartAfter: number | null }
  | { type: 'shutdown'; at: number; host: number; restartAfter: number | null }
  | { type: 'freeze'; at: number; host: number | 'master'; ms: number }
  | { type: 'outage'; at: number; until: number }
  | { type: 'cut'; at: number; until: number; host: number | 'master' }
  | { type: 'slow'; at: number; until: number; extraMs: number }
  | { type: 'eligible'; at: number; host: number; eligible: boolean }
  | { type: 'stepdown'; at: number }
  | { type: 'promote'; at: number; host: number }
  /** An etcd leader election: no leader for `ms`. */
  | { type: 'leader'; at: number; ms: number }
  /** The store answers nothing for `ms`. */
  | { type: 'stall'; at: number; ms: number }
  /** A snapshot at `snapAt`, the master steps down halfway (terms move on), restored at `at`. */
  | { type: 'restore'; at: number; snapAt: number }
  | { type: 'wipe'; at: number };

export interface LeaseScenario {
  seed: number;
  kind: LeaseKind;
  tickMs: number;
  checkBeats: number;
  ttlSeconds: number;
  minDelayMs: number;
  maxDelayMs: number;
  expirySweepMs: number;
  /** The store's election timeout (its leader elections last up to twice it and a vote): the longest the TTL allows. */
  electionMs: number;
  hosts: LeaseHost[];
  faults: LeaseFault[];
  /** End of the fault window, ms. */
  quietAt: number;
  probe: LeaseProbe;
  stableTicks: number;
}

export interface LeaseRunResult {
  scenario: LeaseScenario;
  violation: LeaseViolation | null;
  /** ms from quiet to agreement. */
  convergenceMs: number | null;
  /** ms the probe took (to the new master, or to learn it for a join), null if none. */
  probeMs: number | null;
  timeline: string[];
}
