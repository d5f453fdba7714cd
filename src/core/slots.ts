/**
 * The slot this server claims its terms in (protocol/terms.ts): the first of its candidate
 * slots that no server it has heard of hashes to. Remembered for the life of the process, so a
 * partition that removes a server from the table does not bring a shared slot back.
 */
import { SLOT_CANDIDATES, termSlot } from '../protocol/terms';

export class TermSlots {
  readonly #self: string;
  readonly #slots: number[];
  readonly #taken: boolean[];

  constructor(hostname: string) {
    this.#self = hostname;
    this.#slots = Array.from({ length: SLOT_CANDIDATES }, (_, k) => termSlot(hostname, k));
    this.#taken = this.#slots.map(() => false);
  }

  /** Our first candidate that nobody we heard of hashes to (the last one, should all be). */
  get slot(): number {
    const taken = this.#taken;
    for (let k = 0; k < taken.length; k++) if (!taken[k]) return this.#slots[k] as number;
    return this.#slots[this.#slots.length - 1] as number;
  }

  /** We heard of a server called `hostname`: our claims avoid its slot from now on. */
  note(hostname: string): void {
    if (hostname === this.#self) return;
    const theirs = termSlot(hostname);
    const slots = this.#slots;
    for (let k = 0; k < slots.length; k++) if (slots[k] === theirs) this.#taken[k] = true;
  }
}
