/**
 * The component's `stats`: the driver's counters and the shell's own (drops by reason, old
 * keys, send errors, handoffs), with the term, as one live object whose every property reads
 * the current value. A monitor may keep the object; it never goes stale.
 */
import type { CoreDropReason } from '../elector/types';
import { type DriverStats, emptyDriverStats } from '../driver/driver';
import type { DropReason } from '../wire/codec';

export interface MultiServerStats extends DriverStats {
  /** Datagrams dropped, by reason: by the codec (malformed, unauthenticated) or by the core (stale, unverified, …). */
  dropped: Partial<Record<DropReason | CoreDropReason, number>>;
  /** Authenticated packets verified by a key other than the first (signing) one: 0 once a rotation is complete. */
  oldKeyPackets: number;
  sendErrors: number;
  /** Handoffs completed (stepDown or promote), as seen by the master that handed over. */
  handoffs: number;
  /** Times this server asked the master for the role by preemption (`preempt`). */
  preemptions: number;
  /** The current term (fencing token). */
  term: number;
}

/** What the shell counts itself. */
export class ShellCounters {
  dropped: MultiServerStats['dropped'] = {};
  oldKeyPackets = 0;
  sendErrors = 0;
  handoffs = 0;
  preemptions = 0;

  drop(reason: DropReason | CoreDropReason): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }
}

/** The driver's counters before there is a driver (not started, or the start failed). */
export const EMPTY_DRIVER_STATS: DriverStats = Object.freeze(emptyDriverStats());

const COUNTERS = ['dropped', 'oldKeyPackets', 'sendErrors', 'handoffs', 'preemptions'] as const;

export function liveStats(driverStats: () => DriverStats, counters: ShellCounters, term: () => number): MultiServerStats {
  const stats = {} as MultiServerStats;
  const read = (key: string, get: () => unknown): void => {
    Object.defineProperty(stats, key, { enumerable: true, get });
  };
  for (const key of Object.keys(EMPTY_DRIVER_STATS) as Array<keyof DriverStats>) read(key, () => driverStats()[key]);
  for (const key of COUNTERS) read(key, () => counters[key]);
  read('term', term);
  return stats;
}
