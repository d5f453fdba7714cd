/**
 * Manual handoffs in the lease election: `stepDown()` on the master, `promote()` anywhere.
 *
 * A stepping-down master deletes the election key and names its successor (the `handoff`
 * key) in one fenced transaction; the successor campaigns at once and everyone else waits
 * for it, for a handoff window. `promote()` asks the master (through the `promote` key) to
 * hand over, or with no master campaigns at once whatever the rank. This module keeps what
 * is pending and reports the outcomes; the transactions are the roles' (roles.ts).
 */
import type { LeaseStep } from './step';

export interface PendingHandoff {
  target: string;
  until: number;
  /** We are the master that started it (stepDown): we report the outcome. */
  stepDown: boolean;
}

export class LeaseHandoffs {
  readonly #hostname: string;
  readonly #step: LeaseStep;
  /** A handoff in progress: nobody but `target` campaigns until it does or `until` passes. */
  pending: PendingHandoff | null = null;
  /** promote() waiting for the master to hand over, until then. */
  promoteUntil = Infinity;
  /** promote() with no master: campaign at once, whatever the rank. */
  claimNow = false;

  constructor(hostname: string, step: LeaseStep) {
    this.#hostname = hostname;
    this.#step = step;
  }

  /** `master` holds the role now: the handoff is over; report it if it was our stepDown. */
  done(master: string): void {
    const handoff = this.pending;
    if (!handoff) return;
    this.pending = null;
    if (!handoff.stepDown) return;
    if (master === this.#hostname) {
      this.#step.event({ type: 'stepdown', ok: false, hostname: handoff.target, reason: `${handoff.target} did not take over; we are master again` });
    } else {
      this.#step.event({ type: 'stepdown', ok: true, hostname: master, reason: `${master} is master` });
    }
  }

  /** We became master (term `term`): a promote() waiting for it succeeded. */
  promoted(term: number): void {
    if (this.promoteUntil === Infinity) return;
    this.promoteUntil = Infinity;
    this.#step.event({ type: 'promote', ok: true, reason: `master with term ${term}` });
  }

  /** Handoffs and promote requests past their window fail, and the election goes on as usual. */
  expire(now: number, windowMs: number, master: boolean): void {
    const handoff = this.pending;
    if (handoff && now >= handoff.until) {
      this.pending = null;
      this.#step.log(4, `Handoff to ${handoff.target} did not complete within ${Math.round(windowMs)} ms; electing as usual`);
      if (handoff.stepDown) this.#step.event({ type: 'stepdown', ok: false, hostname: handoff.target, reason: `${handoff.target} did not take over within ${Math.round(windowMs)} ms` });
    }
    if (now >= this.promoteUntil) {
      this.promoteUntil = Infinity;
      this.claimNow = false;
      if (!master) this.#step.event({ type: 'promote', ok: false, reason: `the master did not hand over within ${Math.round(windowMs)} ms` });
    }
  }

  wakeAt(): number {
    return this.pending ? Math.min(this.promoteUntil, this.pending.until) : this.promoteUntil;
  }
}
