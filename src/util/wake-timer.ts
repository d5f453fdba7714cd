/**
 * The one timer of an election: calls `onWake` no earlier than the time last asked for.
 *
 * The driver asks for a wake-up time after every step, and an idle server asks for the same
 * one (its next heartbeat) after every datagram it reads. A timer already set for that time
 * or earlier is kept, so an idle server arms one timer a tick instead of one per datagram.
 * The comparison is with the time asked for, never with the rounded-up firing time: with
 * those, every request for the same time looks earlier and re-arms. An early wake-up costs
 * nothing (the election acts on what is due and asks again); a late one would.
 */
export interface TimerClock {
  /** Monotonic milliseconds. */
  now(): number;
  set(callback: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

/** setTimeout's limit: a longer delay fires at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const REAL_TIMERS: TimerClock = {
  now: () => performance.now(),
  set: (callback, delayMs) => setTimeout(callback, delayMs),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class WakeTimer {
  readonly #onWake: () => void;
  readonly #clock: TimerClock;
  #handle: unknown = null;
  /** The time the pending timer was set for (Infinity: none). */
  #for = Infinity;
  readonly #fire = (): void => {
    this.#handle = null;
    this.#for = Infinity;
    this.#onWake();
  };

  constructor(onWake: () => void, clock: TimerClock = REAL_TIMERS) {
    this.#onWake = onWake;
    this.#clock = clock;
  }

  /** Be woken at monotonic `wakeAt` (or soon after); Infinity or NaN: not at all. */
  schedule(wakeAt: number): void {
    if (!Number.isFinite(wakeAt)) {
      this.clear();
      return;
    }
    if (this.#handle !== null && this.#for <= wakeAt) return;
    this.clear();
    // Rounded up: timers count whole milliseconds, and firing before `wakeAt` would mean a
    // step that finds nothing due and a second timer right behind it.
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(wakeAt - this.#clock.now())));
    this.#for = wakeAt;
    this.#handle = this.#clock.set(this.#fire, delay);
  }

  clear(): void {
    if (this.#handle !== null) this.#clock.clear(this.#handle);
    this.#handle = null;
    this.#for = Infinity;
  }

  /** The time a pending timer was set for, or Infinity. */
  get pendingFor(): number {
    return this.#for;
  }
}
