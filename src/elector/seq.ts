/**
 * Datagram freshness, the one rule of both modes (the UDP core's members, the etcd mode's
 * application messages): whether a sequence number is a reorder or a replay, and the
 * numbers a newer packet skipped over.
 *
 * Sequence numbers of one instance that a newer packet skipped over. A command sent just
 * before a heartbeat (a promote request, an application message) can be overtaken by it on
 * the way; once the heartbeat has raised the "last seq heard", the command looks stale.
 * Remembering the skipped numbers for a while lets it be acted on once, late, while a
 * replay (a number seen before, or skipped and then taken) stays stale.
 */

/** Numbers remembered per instance: a forged jump of a billion costs nothing. */
export const MAX_SKIPPED = 16;

export class SkippedSeqs {
  #entries: Array<{ seq: number; until: number }> = [];

  /** A packet numbered `seq` arrived after `last`: remember what it skipped, until `until`. */
  note(last: number, seq: number, now: number, until: number): void {
    if (last < 0 || seq <= last + 1) return;
    const entries = this.#entries.filter((entry) => entry.until > now);
    for (let missing = Math.max(last + 1, seq - MAX_SKIPPED); missing < seq; missing++) entries.push({ seq: missing, until });
    this.#entries = entries.length > MAX_SKIPPED ? entries.slice(entries.length - MAX_SKIPPED) : entries;
  }

  /** Was `seq` skipped and not taken yet (and not expired)? Takes it: true once at most. */
  take(seq: number, now: number): boolean {
    const index = this.#entries.findIndex((entry) => entry.seq === seq && entry.until > now);
    if (index < 0) return false;
    this.#entries.splice(index, 1);
    return true;
  }

  clear(): void {
    this.#entries = [];
  }
}

/**
 * Open clusters: how far below the last sequence number heard a packet still counts as old.
 * A real server's packets are overtaken by at most a few of its own; anything further below
 * is a new count (a forger's huge number is what it replaces).
 */
export const OPEN_STALE_WINDOW = 1024;

/**
 * Is `seq`, from an instance whose last number heard was `last` (at `lastHeard`, monotonic
 * ms), a reorder or a replay? Authenticated, a number at or below the last is old, always.
 * Without a secret, only close below it, and only while the instance is live (heard within
 * `liveMs`): a forger that copies an instance id (it travels in clear) and sends a huge
 * number must not make the real sender's packets look old after it stops (SPEC 13.6).
 */
export function isStaleSeq(seq: number, last: number, lastHeard: number, now: number, liveMs: number, authenticated: boolean): boolean {
  if (seq > last) return false;
  if (authenticated) return true;
  return last - seq < OPEN_STALE_WINDOW && now < lastHeard + liveMs;
}
