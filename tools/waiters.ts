/**
 * Waiting on child processes: "until this is observed, or fail after a deadline, naming what
 * was awaited and what the children last said". One class for every process-cluster tool, so
 * a wait never sleeps and hopes, and a timeout always explains itself.
 *
 * Conditions are re-checked when the owner says something changed (`check()`, on every batch
 * of reports or an exit). What changes without a report (a file the children write, /proc)
 * is polled instead (`pollMs`).
 */
import { performance } from 'node:perf_hooks';

/** Epoch ms with sub-ms resolution: one clock for every process of this machine, so reports of different children compare. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface WaitersOptions {
  /** What the children last said, appended to a timeout's message. */
  describe?: () => string;
  /** Between the description and the message (default '; '). */
  separator?: string;
  /** Re-check every this many ms while anyone waits: for conditions no report announces. */
  pollMs?: number;
}

interface Waiter {
  predicate: () => boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Waiters {
  readonly #options: WaitersOptions;
  #waiting = new Set<Waiter>();
  #poll: NodeJS.Timeout | null = null;

  constructor(options: WaitersOptions = {}) {
    this.#options = options;
  }

  /** How many waits are open (a tool that closes with some open has a bug). */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Resolves when `predicate` holds (now, or at a later `check()` or poll); rejects after
   * `timeoutMs` naming `what`, or with what the predicate threw.
   */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    try {
      if (predicate()) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#drop(waiter);
        const described = this.#options.describe ? `${this.#options.separator ?? '; '}${this.#options.describe()}` : '';
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${described}`));
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiting.add(waiter);
      this.#startPolling();
    });
  }

  /** Something changed: settle every wait whose condition now holds (each sees the same state). */
  check(): void {
    for (const waiter of [...this.#waiting]) {
      let holds: boolean;
      try {
        holds = waiter.predicate();
      } catch (err) {
        this.#drop(waiter);
        waiter.reject(err);
        continue;
      }
      if (!holds) continue;
      this.#drop(waiter);
      waiter.resolve();
    }
  }

  #drop(waiter: Waiter): void {
    this.#waiting.delete(waiter);
    if (this.#waiting.size === 0 && this.#poll) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  #startPolling(): void {
    if (this.#options.pollMs === undefined || this.#poll) return;
    this.#poll = setInterval(() => this.check(), this.#options.pollMs);
  }
}
