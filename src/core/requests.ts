/**
 * The application's requests for a handover: `promote()` (ask for the master role),
 * `stepDown()` (hand it to the next in rank) and `drained()` (the master work of a held promote
 * request is done). Each either starts the one-round-trip handoff (inbox.ts#handOff) or says
 * why not with a `promote`/`stepdown` event.
 */
import type { Instant } from '../elector/types';
import type { CoreParts } from './assemble';

export class Requests {
  readonly #hostname: string;
  readonly #p: CoreParts;

  constructor(hostname: string, parts: CoreParts) {
    this.#hostname = hostname;
    this.#p = parts;
  }

  stepDown(now: Instant, active: boolean): void {
    const { step, roles, hold, inbox } = this.#p;
    if (!active || !roles.master) {
      step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'this server is not master' });
      return;
    }
    // A promote request held while the app drained: its sender asked first, it gets the role.
    const held = hold.take();
    const target = held !== null && this.#liveEligible(held, now) ? held : roles.bestPeer(now);
    if (!target) {
      step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'no other eligible server to hand off to' });
      return;
    }
    inbox.handOff(target, now);
  }

  releaseHold(now: Instant, active: boolean): void {
    const { step, roles, hold, inbox } = this.#p;
    const target = hold.take();
    if (target === null || !active || !roles.master) return;
    if (!this.#liveEligible(target, now)) {
      step.log(4, `Drained for ${target}, which is no longer a live eligible server: keeping the master role`);
      step.event({ type: 'stepdown', ok: false, hostname: target, reason: `${target} is no longer a live eligible server` });
      return;
    }
    step.log(4, `Master work drained: handing off to ${target}`);
    inbox.handOff(target, now);
  }

  #liveEligible(hostname: string, now: Instant): boolean {
    const members = this.#p.members;
    const peer = members.get(hostname);
    return peer !== undefined && peer.record.eligible && members.isLive(peer, now);
  }

  promote(now: Instant, active: boolean): void {
    const { step, roles, announcer, quorum, handoffs, timing } = this.#p;
    const fail = (reason: string): void => step.event({ type: 'promote', ok: false, reason });
    if (!active) return fail('this server is not running');
    if (roles.master) {
      step.event({ type: 'promote', ok: true, reason: 'already master' });
      return;
    }
    if (!roles.self.eligible) return fail('this server is not eligible');
    // After a stall nothing is decided until the queued packets are read: a master may be among them.
    if (announcer.draining(now)) return fail('this server is reading the packets queued while it was stalled; try again in a moment');
    if (!quorum.has(now, roles.self.eligible, true)) return fail(`no quorum: fewer than ${quorum.size} eligible servers visible`);
    const master = roles.masterHostname;
    handoffs.waitForPromotion(now.mono + timing.tockMs);
    const inFlight = handoffs.inFlight(now, this.#hostname);
    if (inFlight) {
      // Its target is about to claim: ask it once it is master (roles.ts), never claim beside it.
      step.log(4, `A handoff to ${inFlight.target} is in progress: asking ${inFlight.target} for the master role once it has it`);
    } else if (handoffs.pending?.target === this.#hostname && now.mono < handoffs.pending.until) {
      step.log(4, 'A handoff to us is in progress: waiting for it');
    } else if (master && master !== this.#hostname) {
      roles.askForRole(master);
    } else {
      // No master known: ask who is there, and claim once every server had the time to answer
      // (a holdoff), unless a master or a handoff shows up meanwhile. Claiming at once crossed
      // with a handoff already on its way to another server: two masters.
      const at = now.mono + timing.holdoffMs;
      step.log(
        4,
        `Promoted with no master in place: asking who is there, claiming in ${Math.round(timing.holdoffMs)} ms unless a master or a handoff shows up`,
      );
      handoffs.claimAt(at);
      announcer.askWhoIsThere(now);
    }
  }
}
