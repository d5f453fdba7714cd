/**
 * What an operator sees of a cluster: each server's state, judged the same way by the
 * status CLI (from heartbeats it overhears) and by the HTTP status page (from one server's
 * table). Pure functions of what was heard and when; no clock reads, no I/O.
 */
import { DEADLINE_GRACE_TICKS } from '../core/election';
import type { ServerHealth } from '../elector/types';

/**
 * - `listening`: has not named a master yet (a fresh cluster, or between a master's death
 *   and the next claim, or a joiner that has not heard the master's term);
 * - `slave`: follows the live master (carries its term);
 * - `master`: claims the role and is heard on time;
 * - `suspect`: not heard for more than a tick and a half, but for less than its tock
 *   (plus the core's grace): the servers still count it;
 * - `left`: sent a shutdown notice, or silent past its tock: the servers have removed it.
 */
export type ServerState = 'listening' | 'slave' | 'master' | 'suspect' | 'left';

/**
 * Silence that makes a server suspect, in ticks. One tick is the normal gap; half a tick more
 * allows for timer lateness and one reordered datagram before anyone is flagged.
 */
export const SUSPECT_AFTER_TICKS = 1.5;

/** What the judge needs to know of one server. */
export interface Sighting {
  claimsMaster: boolean;
  /** The highest term it reported (absent on the wire: 0). */
  term: number;
  /** Milliseconds since it was last heard. */
  silentMs: number;
  /** Its heartbeat interval and heartbeats per tock. */
  tickMs: number;
  checkBeats: number;
  /** It announced its shutdown. */
  departed: boolean;
}

/** Silence after which the servers remove a peer: its tock plus the core's grace. */
export function deadAfterMs(tickMs: number, checkBeats: number): number {
  return tickMs * (checkBeats + DEADLINE_GRACE_TICKS);
}

function liveness(s: Sighting): 'live' | 'suspect' | 'left' {
  if (s.departed || s.silentMs > deadAfterMs(s.tickMs, s.checkBeats)) return 'left';
  if (s.silentMs > s.tickMs * SUSPECT_AFTER_TICKS) return 'suspect';
  return 'live';
}

/**
 * The state of every sighting, in order. A server follows a master when it carries that
 * master's term (a slave's heartbeat names no master, but it takes the term of the one it
 * follows): a term below the live master's means it has not heard of it yet.
 */
export function judge(sightings: readonly Sighting[]): ServerState[] {
  const alive = sightings.map(liveness);
  const masterTerms = new Set<number>();
  sightings.forEach((s, i) => {
    if (s.claimsMaster && alive[i] !== 'left') masterTerms.add(s.term);
  });
  return sightings.map((s, i) => {
    const state = alive[i];
    if (state !== 'live') return state as ServerState;
    if (s.claimsMaster) return 'master';
    return masterTerms.has(s.term) ? 'slave' : 'listening';
  });
}

/** The server that is master as far as one can tell: the single claimant that has not left. */
export function masterOf<T extends { hostname: string; claimsMaster: boolean; state: ServerState }>(
  servers: readonly T[],
): { hostname: string; conflict: string[] } {
  const claimants = servers.filter((s) => s.claimsMaster && s.state !== 'left').map((s) => s.hostname);
  return claimants.length === 1
    ? { hostname: claimants[0] as string, conflict: [] }
    : { hostname: '', conflict: claimants.length > 1 ? claimants : [] };
}

/**
 * A server's health check in a few characters: `failing 3/3` (failures in a row / fall),
 * `failing, 1/2 passed` on its way back, `passing (1/3 failed)` on its way down; '' without
 * a check. A failing server whose counts are not known (etcd mode) shows `failing`.
 */
export function healthText(health: ServerHealth | null | undefined): string {
  if (!health) return '';
  if (health.state === 'starting') return 'starting';
  if (health.state === 'passing') return health.failures > 0 ? `passing (${health.failures}/${health.fall} failed)` : 'passing';
  if (health.passes > 0) return `failing, ${health.passes}/${health.rise} passed`;
  return health.failures > 0 ? `failing ${health.failures}/${health.fall}` : 'failing';
}
