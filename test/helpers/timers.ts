/** Timers for rules that wait (drains, health checks): they fire only when a test advances the clock. */
import type { WorkTimers } from '../../src/app/exclusive';

/** Timers that fire only when the test advances the clock. */
export class ManualTimers implements WorkTimers {
  #now = 0;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  wall(): number {
    return 1_700_000_000_000 + this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Advance to `ms` later, firing every timer due on the way, in order; promises settle between. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await flush();
      let due: [number, { at: number; fn: () => void }] | null = null;
      for (const entry of this.#timers) if (entry[1].at <= until && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = until;
    await flush();
  }
}

/** Let promises and immediates settle. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
