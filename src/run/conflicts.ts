/**
 * Keepalived's lesson (a winner that is not told again after a split brain): when a master
 * conflict ends with this server still master, its on-master hook runs again, with the term
 * it now holds. A conflict has ended once no peer claims the role and none was seen since the
 * last look. Read from the component's public `stats.conflicts` and `servers`, as any app could.
 */
import type MultiServer = require('../component');

export class ConflictWatch {
  readonly #multi: MultiServer;
  readonly #won: () => void;
  #seen = 0;
  #pending = false;
  #timer: NodeJS.Timeout | null = null;

  /** `won` runs each time a conflict ends with this server master. */
  constructor(multi: MultiServer, won: () => void) {
    this.#multi = multi;
    this.#won = won;
  }

  /** Look every `everyMs` from now on (the conflicts so far are not this tenure's). */
  start(everyMs: number): void {
    this.#seen = this.#multi.stats.conflicts;
    this.#pending = false;
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#look(), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #look(): void {
    if (!this.#multi.master) return;
    const seen = this.#multi.stats.conflicts;
    if (seen !== this.#seen) {
      this.#seen = seen;
      this.#pending = true;
      return;
    }
    if (!this.#pending) return;
    const rival = Object.values(this.#multi.servers).some((record) => !record.self && record.master);
    if (rival) return;
    this.#pending = false;
    this.#won();
  }
}
