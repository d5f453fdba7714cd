/**
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
