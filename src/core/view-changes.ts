/**
 * Which rows of the table changed since the application last read its view (the driver's
 * `servers`), so that a read copies those rows and not the whole table.
 *
 * Apart from the member table because it is the application's concern, not the election's:
 * nothing here decides anything, and until the view is first read (the simulator never
 * reads it) nothing is kept at all.
 */
export class ViewChanges {
  readonly #bound: number;
  /** Hostnames whose record changed since the last `take`. */
  #changed = new Set<string>();
  #all = false;
  /** The view has been read at least once: from then on changes are noted. */
  #viewed = false;

  /** `bound`: past this many changed hostnames between two reads, the view is rebuilt instead. */
  constructor(bound: number) {
    this.#bound = bound;
  }

  /** A record changed: the application's view copies it again. */
  touch(hostname: string): void {
    if (this.#all || !this.#viewed) return;
    this.#changed.add(hostname);
    // A flood of forged hostnames between two reads of the view must not grow this set
    // without bound.
    if (this.#changed.size > this.#bound) {
      this.#all = true;
      this.#changed.clear();
    }
  }

  /** Hostnames changed (added, updated or removed) since the last call, or 'all'. */
  take(): Set<string> | 'all' {
    if (!this.#viewed) {
      this.#viewed = true;
      return 'all';
    }
    if (this.#all) {
      this.#all = false;
      return 'all';
    }
    const changed = this.#changed;
    this.#changed = new Set();
    return changed;
  }
}
