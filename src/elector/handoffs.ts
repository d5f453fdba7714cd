/**
 * What both modes keep of a manual handoff (`stepDown()` on the master, `promote()` anywhere)
 * and how its outcome is told: the handoff in progress (nobody but its target takes the role
 * until it does or its window passes), the promote() waiting for the master to hand over,
 * and the `stepdown` and `promote` events that settle them. How a handoff travels differs, and
 * stays with each machine: the UDP core names the target in its heartbeats and a promote()
 * asks the master by datagram (core/handoff.ts); the lease election deletes its key and
 * names the target in one fenced transaction, and a promote() writes a key the master
 * watches (coordinator/handoff.ts, coordinator/roles.ts).
 */
import type { OutputStep } from './step';

export interface HandoffInFlight {
  target: string;
  /** Monotonic ms: past it, the handoff failed and the election goes on as usual. */
  until: number;
  /** We are the master that started it: we report the outcome. */
  stepDown: boolean;
}

export class HandoffOutcomes<P extends HandoffInFlight = HandoffInFlight> {
  protected readonly step: OutputStep;
  /** A handoff in progress: nobody but `target` takes the role until it does or `until` passes. */
  pending: P | null = null;
  /** promote() waiting for the master to hand over, until then (Infinity: none waiting). */
  promoteUntil = Infinity;

  constructor(step: OutputStep) {
    this.step = step;
  }

  /** `master` holds the role now: a handoff in progress has ended, one way or the other; ours is reported. */
  done(master: string, self: string): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    if (!pending.stepDown) return;
    if (master === self) {
      this.step.event({
        type: 'stepdown',
        ok: false,
        hostname: pending.target,
        reason: `${pending.target} did not take over; we are master again`,
      });
    } else {
      this.step.event({ type: 'stepdown', ok: true, hostname: master, reason: `${master} is master` });
    }
  }

  /** We became master (term `term`): a promote() waiting for it succeeded. */
  promoted(term: number): void {
    if (this.promoteUntil === Infinity) return;
    this.promoteUntil = Infinity;
    this.promoteSettled();
    this.step.event({ type: 'promote', ok: true, reason: `master with term ${term}` });
  }

  /** A handoff, or a promote() request, past its window (`within`, as the reasons say it) fails; the election goes on as usual. */
  expire(now: number, weAreMaster: boolean, within: string): void {
    const pending = this.pending;
    if (pending && now >= pending.until) {
      this.pending = null;
      this.step.log(4, `Handoff to ${pending.target} did not complete within ${within}; electing as usual`);
      if (pending.stepDown)
        this.step.event({
          type: 'stepdown',
          ok: false,
          hostname: pending.target,
          reason: `${pending.target} did not take over within ${within}`,
        });
    }
    if (now >= this.promoteUntil) {
      this.promoteUntil = Infinity;
      this.promoteSettled();
      if (!weAreMaster) this.step.event({ type: 'promote', ok: false, reason: `the master did not hand over within ${within}` });
    }
  }

  /** The waiting promote() is over (succeeded or expired): forget what a machine kept for it. */
  protected promoteSettled(): void {}
}
