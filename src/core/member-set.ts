/**
 * Two small bookkeepers of the member table: the sorted member set, and recent departures.
 */
import type { Instant } from '../elector/types';
import { lowerBound } from './sorted';
import type { Timing } from './timing';

/** Hostnames kept sorted as they come and go, and a count of the changes. */
export class MemberSet {
  readonly list: string[] = [];
  version = 0;

  set(hostname: string, member: boolean): void {
    const list = this.list;
    const low = lowerBound(list, hostname);
    const present = list[low] === hostname;
    if (member === present) return;
    if (member) list.splice(low, 0, hostname);
    else list.splice(low, 1);
    this.version++;
  }
}

/**
 * hostname → instance and sequence number of the last shutdown notice heard, even for a
 * server not (or no longer) in the table. A packet that instance sent before the notice
 * can arrive after it (reordering); it must not bring the server back as a ghost master
 * for a tock. A later sequence number means the instance lives on. Only for the answer
 * holdoff after the notice, as for a restart's overtaken packets: without a secret a
 * notice can be forged, and must not silence the real server for longer.
 */
export class Departures {
  readonly #max: number;
  readonly #timing: Timing;
  #departed = new Map<string, { iid: string; seq: number; until: number }>();

  constructor(max: number, timing: Timing) {
    this.#max = max;
    this.#timing = timing;
  }

  note(hostname: string, iid: string, seq: number | undefined, now: Instant): void {
    this.#departed.delete(hostname);
    this.#departed.set(hostname, { iid, seq: seq ?? Infinity, until: now.mono + this.#timing.holdoffMs });
    // Bounded like the table: forget the oldest departures first.
    if (this.#departed.size > this.#max) this.#departed.delete(this.#departed.keys().next().value as string);
  }

  sentBefore(hostname: string, iid: string | undefined, seq: number | undefined, now: Instant): boolean {
    if (this.#departed.size === 0) return false;
    const departed = this.#departed.get(hostname);
    return departed !== undefined && iid === departed.iid && (seq ?? -1) < departed.seq && now.mono < departed.until;
  }
}
