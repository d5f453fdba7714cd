/**
 * 32-bit FNV-1a over UTF-16 code units, then murmur3's finaliser to spread the bits: small,
 * fast and stable across machines and Node versions. Term slots (terms.ts) and the owners of
 * keys (app/rendezvous.ts) rest on it, so it never changes: two versions in one cluster would
 * claim alike or split keys two ways.
 */
export function hash32(text: string): number {
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
