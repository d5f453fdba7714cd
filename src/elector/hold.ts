/**
 * A promote request held while the app's master work drains (both modes).
 *
 * A master asked for the role by another server (a `promote`, or a preempting server) does not
 * hand over at once when the app has asked for drains (`holdMs` set): it stays master, tells
 * the app (a `drain` event), and hands over when the app says the work has drained
 * (`drained()`). Meanwhile its heartbeats name the server waiting (`drain`), which keeps its
 * promote() waiting for as long as they do, so a drain longer than a tock is not a failed
 * promote. The election never waits on the app's promise: the hold is state, the app's answer
 * an input, and should the answer never come, the hold ends by itself `holdMs` and a tock
 * after it began (the app aborts its work at `holdMs`; this is the backstop).
 *
 * One request is held at a time: the first asker is the target; a second one during the drain
 * is not (its promote() fails, as it would have against a handoff already under way).
 */
import type { CoreEvent } from './types';

export interface HoldSink {
  event(event: CoreEvent): void;
  log(level: number, message: string): void;
}

export class PromoteHold {
  readonly #sink: HoldSink;
  /** How long the app may drain (its drain_timeout), ms; null: requests are not held. */
  holdMs: number | null;
  #held: { target: string; since: number } | null = null;

  constructor(sink: HoldSink, holdMs: number | null) {
    this.#sink = sink;
    this.holdMs = holdMs;
  }

  /** The server whose request is held, or null. */
  get target(): string | null {
    return this.#held?.target ?? null;
  }

  /**
   * A live eligible server asked us, the master, for the role: hold the request if drains are
   * asked for (true), or not (false: hand over now). A repeat of the held request changes nothing.
   */
  hold(target: string, now: number): boolean {
    if (this.holdMs === null) return false;
    const held = this.#held;
    if (held) {
      if (held.target !== target)
        this.#sink.log(4, `${target} asked for the master role while we drain for ${held.target}: ${held.target} goes first`);
      return true;
    }
    this.#held = { target, since: now };
    this.#sink.log(4, `${target} asked for the master role: draining our master work first (at most ${Math.round(this.holdMs)} ms)`);
    this.#sink.event({ type: 'drain', target });
    return true;
  }

  /** The held request, cleared (the app has drained, or stepDown() takes it over). */
  take(): string | null {
    const target = this.#held?.target ?? null;
    this.#held = null;
    return target;
  }

  /** Forget a held request (we are no longer master: the asker learns who is). */
  clear(): void {
    this.#held = null;
  }

  /** The app never answered: the backstop is due (`tockMs` after its own timeout). */
  overdue(now: number, tockMs: number): boolean {
    const held = this.#held;
    return held !== null && this.holdMs !== null && now >= held.since + this.holdMs + tockMs;
  }

  nextDeadline(tockMs: number): number {
    const held = this.#held;
    return held && this.holdMs !== null ? held.since + this.holdMs + tockMs : Infinity;
  }
}
