/**
 * "At most once per interval per key", with a bounded number of keys, so a flood of
 * bad packets from many forged addresses costs a few log lines and a fixed amount of memory.
 */
export class RateLimiter {
  #intervalMs: number;
  #maxKeys: number;
  #entries = new Map<string, { allowedAt: number; suppressed: number }>();

  constructor(intervalMs: number, maxKeys = 256) {
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  /**
   * Record an occurrence for `key` at monotonic time `now`. Returns the number of
   * occurrences suppressed since the last one allowed (0 or more) when this one may be
   * reported, or null when it is to be suppressed.
   */
  hit(key: string, now: number): number | null {
    const entry = this.#entries.get(key);
    if (entry && now - entry.allowedAt < this.#intervalMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxKeys) {
      // Oldest-allowed first (Map keeps insertion order and we re-insert on each allow).
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { allowedAt: now, suppressed: 0 });
    return suppressed;
  }

  get size(): number {
    return this.#entries.size;
  }
}
