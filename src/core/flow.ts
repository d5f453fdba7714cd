/**
 * What every input into the core goes through besides its own work: the stall check before,
 * the election rules (and preemption) after, and the flush that closes the step (the member
 * set if it changed, the next wake-up time, one Output). Kept apart from the facade so that
 * `election.ts` reads as the list of inputs, and so that the routine heartbeat's fast path
 * (routine.ts) ends its step through the very same flush.
 */
import type { Instant, Output } from '../elector/types';
import type { CoreParts } from './assemble';

export class StepFlow {
  readonly #hostname: string;
  readonly #p: CoreParts;
  started = false;
  /** The wake-up time the last step asked for: until then, no deadline of the rules is due. */
  wakeAt = -Infinity;

  constructor(hostname: string, parts: CoreParts) {
    this.#hostname = hostname;
    this.#p = parts;
  }

  get active(): boolean {
    const roles = this.#p.roles;
    return this.started && !roles.stopped && !roles.exiting;
  }

  /**
   * Live eligible servers (self included when eligible), sorted: the set that work split by
   * key is assigned over. Every server computes the same set once the cluster is stable.
   */
  eligibleMembers(): string[] {
    const members = [...this.#p.members.eligible];
    if (this.#p.roles.self.eligible) {
      let at = 0;
      while (at < members.length && (members[at] as string) < this.#hostname) at++;
      members.splice(at, 0, this.#hostname);
    }
    return members;
  }

  checkStall(now: Instant): void {
    const { announcer, timing, roles } = this.#p;
    const late = announcer.checkStall(now);
    if (!late) return;
    // Peers wait a tock and their grace before they replace a silent master; a peer on a quiet
    // machine gives the smallest grace, whatever this stall did to ours.
    const silent = now.mono - announcer.lastHeartbeatAt;
    const peersWait = timing.leastPeerWaitMs;
    if (silent >= peersWait - timing.tickMs) roles.recover(now);
    if (roles.master && silent >= peersWait) {
      // Silent longer than the others wait before electing a replacement: they probably
      // have one. Fence ourselves now rather than fight it; if nobody took over, the
      // election after the drain gives the role straight back.
      roles.relinquish(`stalled ${Math.round(silent)} ms, longer than peers wait for a master`);
      roles.sendHeartbeat(now);
    }
  }

  evaluate(now: Instant): void {
    if (this.#p.announcer.draining(now)) return; // read what queued up during a stall first
    this.#p.roles.evaluate(now);
    if (this.#p.preempt.enabled) this.#preemptIfDue(now);
  }

  /**
   * Preemption: an eligible slave that ranks first among the live eligible servers, with its
   * quorum, no handoff under way and no promote() of its own waiting, asks the master it has
   * followed for the delay to hand the role over (a promote request, drained like any other).
   */
  #preemptIfDue(now: Instant): void {
    const { roles, handoffs, quorum, members, preempt, step, timing } = this.#p;
    const hostname = this.#hostname;
    const master = roles.masterHostname;
    let candidate: string | null = null;
    if (
      roles.role === 'slave' &&
      roles.self.eligible &&
      master !== '' &&
      master !== hostname &&
      !handoffs.promoting &&
      handoffs.pending === null
    ) {
      const best = roles.bestPeer(now);
      // The master itself may not count as live a moment (its heartbeats lost): it must still
      // rank after us, or a lossy link would hand the role to a server that ranks after it.
      const first = (best === null || roles.compare(hostname, best) < 0) && roles.compare(hostname, master) < 0;
      if (first && quorum.has(now, true, true) && members.get(master) !== undefined) candidate = master;
    }
    if (!preempt.due(now.mono, candidate) || candidate === null) return;
    step.log(
      4,
      `Preempting ${candidate}: we rank first and have followed it for ${Math.round(preempt.delayMs ?? 0)} ms; asking it for the master role`,
    );
    step.event({ type: 'preempt', master: candidate });
    handoffs.waitForPromotion(now.mono + timing.tockMs);
    roles.askForRole(candidate);
  }

  #wakeAt(now: Instant): number {
    if (!this.active) return Infinity;
    const { announcer, handoffs, roles, quorum, members, instances, hold, preempt, timing } = this.#p;
    // Draining after a stall: only heartbeats go on; every deadline waits for the drain.
    if (announcer.draining(now)) return announcer.nextDeadline(now);
    let wake = Math.min(announcer.nextDeadline(now), handoffs.nextDeadline());
    if (!roles.settled) wake = Math.min(wake, roles.listenUntil);
    wake = Math.min(wake, quorum.nextDeadline(now), members.nextDeadline(now), instances.nextDeadline(now), roles.nextRelayDeadline(now));
    if (roles.master) wake = Math.min(wake, hold.nextDeadline(timing.tockMs));
    else wake = Math.min(wake, preempt.nextDeadline());
    return wake;
  }

  flush(now: Instant): Output {
    const { step, roles, hold, members, membersReport, announcer } = this.#p;
    // A request held for a role we no longer have: its sender learns the new master by itself.
    if (!roles.master && hold.target !== null) hold.clear();
    if (this.started && step.membersMayHaveChanged) {
      step.membersMayHaveChanged = false;
      // After a step that may have changed it (a join, a departure, an eligibility flip),
      // report the live eligible set if it changed: that is when keys move.
      membersReport.report(
        `${members.membersVersion}/${roles.self.eligible}`,
        () => this.eligibleMembers(),
        (event) => step.event(event),
      );
    }
    const wakeAt = this.#wakeAt(now);
    this.wakeAt = wakeAt;
    if (this.active) announcer.requested(wakeAt, now);
    return step.take(wakeAt);
  }
}
