/**
 * Log lines caused by network input, bounded whatever the senders do.
 *
 * Two limits, both independent of how many senders or addresses there are:
 *  - per kind (a fixed set chosen by the code: "conflict", "dropped:bad-mac", …), at most
 *    one line per `kindIntervalMs`;
 *  - overall, a token bucket per class of line: operator lines (level 8 and below) and
 *    packet traces (levels 9 and 10), each with a burst and a refill rate.
 * A suppressed line is counted; the next line of its kind that passes says how many were
 * suppressed, and `suppressed` totals them for the stats. Over any window of t seconds at
 * most `burst + rate × t` lines of each class are written.
 */

export interface LogBudgetOptions {
  /** One line per kind per this many ms. @default 60000 */
  kindIntervalMs?: number;
  /** Operator lines (levels ≤ 8): burst and lines per second. @default 50, 1 */
  operatorBurst?: number;
  operatorPerSecond?: number;
  /** Packet traces (levels 9–10): burst and lines per second. @default 500, 100 */
  traceBurst?: number;
  tracePerSecond?: number;
}

export const LOG_BUDGET_DEFAULTS: Required<LogBudgetOptions> = {
  kindIntervalMs: 60_000,
  operatorBurst: 50,
  operatorPerSecond: 1,
  traceBurst: 500,
  tracePerSecond: 100,
};

/** Kinds are chosen by the code, never by the network; this only guards against a bug. */
const MAX_KINDS = 512;

class Bucket {
  #tokens: number;
  #at = -Infinity;
  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {
    this.#tokens = burst;
  }
  take(now: number): boolean {
    if (this.#at !== -Infinity) this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export class LogBudget {
  readonly #options: Required<LogBudgetOptions>;
  readonly #operator: Bucket;
  readonly #trace: Bucket;
  #kinds = new Map<string, { allowedAt: number; suppressed: number }>();
  /** Lines without a kind suppressed since the last one written. */
  #loose = { suppressed: 0 };
  /** Lines suppressed so far, all kinds. */
  suppressed = 0;

  constructor(options: LogBudgetOptions = {}) {
    this.#options = { ...LOG_BUDGET_DEFAULTS, ...options };
    this.#operator = new Bucket(this.#options.operatorBurst, this.#options.operatorPerSecond);
    this.#trace = new Bucket(this.#options.traceBurst, this.#options.tracePerSecond);
  }

  /**
   * May a line of `level` (and `kind`, when it is one of the repetitive kinds) be written
   * at monotonic `now`? Returns the number suppressed before it (for "N more suppressed"),
   * or null to suppress it.
   */
  admit(level: number, kind: string | undefined, now: number): number | null {
    let entry: { allowedAt: number; suppressed: number } | undefined;
    if (kind !== undefined) {
      entry = this.#kinds.get(kind);
      if (entry && now - entry.allowedAt < this.#options.kindIntervalMs) return this.#suppress(entry);
    }
    if (!(level >= 9 ? this.#trace : this.#operator).take(now))
      return this.#suppress(entry ?? (kind === undefined ? this.#loose : undefined));
    if (kind === undefined) {
      const loose = this.#loose.suppressed;
      this.#loose.suppressed = 0;
      return loose;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#kinds.delete(kind);
    if (this.#kinds.size >= MAX_KINDS) this.#kinds.delete(this.#kinds.keys().next().value as string);
    this.#kinds.set(kind, { allowedAt: now, suppressed: 0 });
    return suppressed;
  }

  #suppress(entry: { suppressed: number } | undefined): null {
    if (entry) entry.suppressed++;
    this.suppressed++;
    return null;
  }
}
