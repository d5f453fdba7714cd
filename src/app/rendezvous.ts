/**
 * Work split by key with rendezvous (highest random weight) hashing: every key belongs to
 * the server with the highest weight(key, server). Every server computes the same owner
 * from the same member list, without talking; when a server joins, only the keys it now
 * wins move to it, and when one leaves, only its keys move (each to its runner-up).
 */

import { hash32 } from '../protocol/hash';

/** The weight of `server` for `key`; the separator keeps ("ab","c") and ("a","bc") apart. */
export function weight(key: string, server: string): number {
  return hash32(`${server}\u0000${key}`);
}

/** The server that owns `key` among `servers`, or null when there are none. Ties go to the hostname that sorts first. */
export function ownerOf(key: string, servers: readonly string[]): string | null {
  let best: string | null = null;
  let bestWeight = -1;
  for (const server of servers) {
    const w = weight(key, server);
    if (w > bestWeight || (w === bestWeight && best !== null && server < best)) {
      best = server;
      bestWeight = w;
    }
  }
  return best;
}
