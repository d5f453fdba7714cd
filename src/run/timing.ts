/**
 * The wrapper's deadlines, derived from the cluster's timing: how long after this process
 * stops (SIGSTOP, a paused VM, SIGKILL) another server may become master, and so by when the
 * command must be dead for two runs never to overlap.
 */
import type { Settings } from '../config';
import { defaultTtlSeconds } from '../coordinator/timing';

export interface RunTiming {
  /**
   * The failover budget: the least time from this process's last sign of life to another
   * server's claim. UDP: peers wait tock + ¼ tick (tock + tick with a quorum: the lease)
   * after the last heartbeat they heard, which left here up to a tick before the stall.
   * etcd: the lease outlives the last keep-alive by its TTL, and keep-alives go every TTL/3.
   */
  budgetMs: number;
  /** Silence after which the guardian sends SIGTERM: half the budget. */
  silenceMs: number;
  /** Silence by which the guardian has sent SIGKILL: 0.8 of the budget. */
  deadMs: number;
  /** How often the wrapper signs of life to the guardian. */
  pingMs: number;
  /**
   * SIGKILL delay cap after an involuntary loss of the role. etcd: the master steps down a
   * margin before its lease can expire; half of it. UDP: half a tick (with a quorum, a master
   * steps down about a tick before anyone else may claim; without one, a rival already claims).
   */
  lossGraceMs: number;
}

export function runTiming(settings: Pick<Settings, 'heartbeat_freq' | 'check_beats' | 'quorum' | 'coordinator'>): RunTiming {
  const tickMs = settings.heartbeat_freq * 1000;
  const tockMs = tickMs * settings.check_beats;
  let budgetMs: number;
  let lossGraceMs: number;
  if (settings.coordinator) {
    // The component's own default TTL (a tock in whole seconds, at least what outlasts an etcd leader election).
    const ttlMs = (settings.coordinator.ttl || defaultTtlSeconds(tockMs, settings.coordinator.election_timeout_ms)) * 1000;
    budgetMs = (ttlMs * 2) / 3;
    lossGraceMs = Math.min(ttlMs / 3, Math.max(100, ttlMs / 10)) / 2;
  } else {
    budgetMs = tockMs + (settings.quorum > 0 ? tickMs : tickMs / 4) - tickMs;
    lossGraceMs = tickMs / 2;
  }
  return {
    budgetMs,
    silenceMs: budgetMs / 2,
    deadMs: budgetMs * 0.8,
    pingMs: Math.min(1000, Math.max(10, budgetMs / 8)),
    lossGraceMs,
  };
}

/** The delay before restart number `failures` (1, 2, …): doubling from `initialMs`, capped. */
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(failures - 1, 40)));
}
