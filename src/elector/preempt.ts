/**
 * Preemption (off by default, both modes): a server that ranks first among the live eligible
 * servers, and follows another master, asks that master for the role (a promote request: a
 * graceful handoff, with the drain of its work) once it has followed that same master,
 * without a break, for `delayMs`; and it asks at most once per `delayMs`.
 *
 * Why "ranks first among all", not "ranks above the master": with several preempting servers
 * above the master, only the first in rank asks, so the role moves once, not along a chain.
 * Why the delay counts from following *this* master: any change of master (a preemption, a
 * failover) starts it again, so the role bounces at most once per delay, however a server
 * flaps: a restarted server is a new process, which starts counting afresh.
 *
 * The election calls `due()` after each step with the master it follows when every other
 * condition holds (null otherwise); this module only keeps time. No clock is read here.
 */

export interface PreemptPolicy {
  /** Milliseconds a master must have been followed before it is asked; null: preemption off. */
  delayMs: number | null;
}

export class Preemption {
  delayMs: number | null;
  /** The master followed while every condition held, and since when (monotonic ms). */
  #following: { master: string; since: number } | null = null;
  /** When we last asked (monotonic ms). */
  #askedAt = -Infinity;

  constructor(policy: PreemptPolicy) {
    this.delayMs = policy.delayMs;
  }

  get enabled(): boolean {
    return this.delayMs !== null;
  }

  /**
   * `master`: the master we follow, when we may preempt it (we are an eligible slave that ranks
   * first, in contact, no handoff or promote under way); null when any condition fails. True:
   * ask it for the role now.
   */
  due(now: number, master: string | null): boolean {
    const delay = this.delayMs;
    if (delay === null || master === null) {
      this.#following = null;
      return false;
    }
    if (this.#following?.master !== master) this.#following = { master, since: now };
    if (now < this.#following.since + delay || now < this.#askedAt + delay) return false;
    this.#askedAt = now;
    return true;
  }

  /** When `due()` may next say yes (Infinity: not while nothing is followed). */
  nextDeadline(): number {
    const delay = this.delayMs;
    if (delay === null || this.#following === null) return Infinity;
    return Math.max(this.#following.since + delay, this.#askedAt + delay);
  }
}
