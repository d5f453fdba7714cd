/**
 * Which etcd member an op goes to. Each server keeps to one member while it answers (its
 * `preferred`, first picked at random so that servers spread over the members), moves to
 * another as soon as one fails, and avoids a member that failed for a while, longer after
 * each failure in a row (1 s, doubling, up to 10 s), so a dead member costs one refused
 * connection, not every op's timeout. An op that is already pending on some members (a
 * keep-alive sent again because the first is slow) goes elsewhere: `exclude`.
 *
 * Pure: the adapter (etcd.ts) reports outcomes and asks; the time is passed in.
 */

/** How long a member that failed is avoided, the first time, ms (doubled per failure in a row). */
export const AVOID_MS = 1000;
export const AVOID_MAX_MS = 10_000;

export class Endpoints {
  readonly count: number;
  #preferred: number;
  readonly #avoidUntil: number[];
  readonly #failures: number[];

  constructor(count: number, random: () => number = Math.random) {
    if (!(count >= 1)) throw new RangeError('at least one endpoint');
    this.count = count;
    this.#preferred = Math.min(count - 1, Math.floor(random() * count));
    this.#avoidUntil = new Array<number>(count).fill(-Infinity);
    this.#failures = new Array<number>(count).fill(0);
  }

  get preferred(): number {
    return this.#preferred;
  }

  /** Avoided now (it failed recently). */
  avoided(index: number, now: number): boolean {
    return now < (this.#avoidUntil[index] as number);
  }

  /**
   * The member for the next op: not excluded if possible, then not avoided, then the
   * preferred one, then the others in turn after it. With every member excluded or avoided,
   * the one whose avoidance ends first (something must be tried).
   */
  pick(now: number, exclude: ReadonlySet<number> = EMPTY): number {
    let best = this.#preferred;
    let bestScore = Infinity;
    for (let step = 0; step < this.count; step++) {
      const index = (this.#preferred + step) % this.count;
      const avoidUntil = this.#avoidUntil[index] as number;
      // Lower is better: excluded last, then avoided (sooner back first), then in turn.
      const score = (exclude.has(index) ? 2e15 : 0) + (now < avoidUntil ? 1e15 + Math.max(0, avoidUntil - now) * 1e3 : 0) + step;
      if (score < bestScore) {
        bestScore = score;
        best = index;
      }
    }
    return best;
  }

  /** It answered: keep to it. */
  succeeded(index: number): void {
    this.#failures[index] = 0;
    this.#avoidUntil[index] = -Infinity;
    this.#preferred = index;
  }

  /** It failed (no connection, no answer in time, no leader there): avoid it for a while, move on. */
  failed(index: number, now: number): void {
    const failures = (this.#failures[index] as number) + 1;
    this.#failures[index] = failures;
    this.#avoidUntil[index] = now + Math.min(AVOID_MAX_MS, AVOID_MS * 2 ** (failures - 1));
    if (this.#preferred === index && this.count > 1) this.#preferred = this.pick(now, new Set([index]));
  }
}

const EMPTY: ReadonlySet<number> = new Set();
