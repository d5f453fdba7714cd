/**
 * The members report of both modes: the live eligible servers (self included when eligible),
 * sorted, in a `members` event whenever the set changes, and only then. That is when keys
 * split with masterFor() move, so a report that repeats the same set would make an
 * application shuffle work for nothing.
 */
import type { CoreEvent } from './types';

export class MembersReport {
  /** What the last report was made from; '' before the first. */
  #last = '';

  /**
   * After a step that may have changed the set: `key` identifies the set (the list joined, or
   * anything that changes whenever it does); `members` builds the list only when it is reported.
   */
  report(key: string, members: () => string[], event: (event: CoreEvent) => void): void {
    if (key === this.#last) return;
    this.#last = key;
    event({ type: 'members', members: members() });
  }
}
