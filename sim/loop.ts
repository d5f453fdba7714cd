/**
 * The one simulation loop both modes run on: simulated time, the event heap (ordered by time,
 * then by the order things were scheduled, so a seed replays exactly), the livelock guard and
 * the timeline. `SimCluster` (UDP: the datagram network) and `LeaseSimCluster` (etcd: the
 * simulated lease store) extend it and say what one scheduled item does (`process`).
 */
import { EventHeap, type Scheduled } from './heap';

export interface LoopOptions {
  trace: boolean;
  /** Steps allowed at one simulated instant before the run is called a livelock. */
  maxStepsAtOneInstant: number;
}

export abstract class SimLoop<Item extends Scheduled> {
  readonly timeline: string[] = [];
  now = 0;
  /** Simulation steps processed (deliveries, timers, calls). */
  steps = 0;

  readonly #heap = new EventHeap<Item>();
  readonly #trace: boolean;
  readonly #maxStepsAtOneInstant: number;
  #seq = 0;
  #stepTime = -1;
  #stepsAtTime = 0;

  constructor(options: LoopOptions) {
    this.#trace = options.trace;
    this.#maxStepsAtOneInstant = options.maxStepsAtOneInstant;
  }

  get tracing(): boolean {
    return this.#trace;
  }

  /** Items scheduled and not yet run. */
  get pending(): number {
    return this.#heap.size;
  }

  /** Carry out one scheduled item, `now` already at its time. */
  protected abstract process(item: Item): void;

  /** Called after every step (one delivery, one timer, one call): where the invariants are checked. */
  protected abstract afterStep(): void;

  /** Schedule an item; items due at the same instant run in the order they were pushed. */
  protected push(item: Item): void {
    item.seq = ++this.#seq;
    this.#heap.push(item);
  }

  runUntil(time: number): void {
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.time > time) break;
      this.#heap.pop();
      this.#step(next);
    }
    this.now = Math.max(this.now, time);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Run until `predicate` holds (checked after each step) or `limitMs` pass; returns the time or null. */
  runUntilTrue(predicate: () => boolean, limitMs: number): number | null {
    const end = this.now + limitMs;
    if (predicate()) return this.now;
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.time > end) break;
      this.#heap.pop();
      this.#step(next);
      if (predicate()) return this.now;
    }
    this.now = Math.max(this.now, end);
    return null;
  }

  /** Write a line into the timeline (when tracing). */
  note(host: string, text: string): void {
    if (this.#trace) this.timeline.push(`${this.now.toFixed(1).padStart(10)} ms  ${host.padEnd(8)} ${text}`);
  }

  #step(item: Item): void {
    this.now = item.time;
    this.steps++;
    if (item.time === this.#stepTime) {
      // Simulated time must move on: a machine that keeps asking to be woken "now" is a
      // livelock (in a real process, a busy loop).
      if (++this.#stepsAtTime > this.#maxStepsAtOneInstant)
        throw new Error(`livelock: more than ${this.#maxStepsAtOneInstant} steps at ${this.now} ms`);
    } else {
      this.#stepTime = item.time;
      this.#stepsAtTime = 0;
    }
    this.process(item);
    this.afterStep();
  }
}
