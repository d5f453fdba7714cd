/**
 * Work split by key with rendezvous (highest random weight) hashing: every key belongs to
 * the server with the highest weight(key, server). Every server computes the same owner
 * from the same member list, without talking; when a server joins, only the keys it now
 * wins move to it, and when one leaves, only its keys move (each to its runner-up).
 */

/**
 * 32-bit FNV-1a over UTF-16 code units, then murmur3's finaliser to spread the bits:
 * small, fast and stable across machines and Node versions (nothing here may change
 * between releases, or a rolling upgrade would split keys two ways).
 */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

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
