/**
 * Manual handoffs: `stepDown()` on the master and `promote()` on another server.
 *
 * A handoff names its target in every heartbeat of the departing master until it is done:
 * the target claims at once and everyone else waits for it, for at most a tock. Every
 * heartbeat names it, not just the first: when a later one overtakes it, the first is
 * dropped as stale. A promote() that meets a handoff in flight waits for its target to be
 * master and asks it then: claiming at once made the target and the promoter master together.
 */
import type { Instant } from '../elector/types';
import type { OutputStep } from '../elector/step';
import { HandoffOutcomes, type HandoffInFlight } from '../elector/handoffs';

export interface PendingHandoff extends HandoffInFlight {
  /**
   * The term of the master handing off. A claim below it was superseded before the handoff
   * began (one that master outranked, whose yield is still on its way): not a master to follow.
   */
  term: number;
}

export class Handoffs extends HandoffOutcomes<PendingHandoff> {
  /** The master our waiting promote() has asked for the role (null: none yet). */
  #asked: string | null = null;
  /** Our waiting promote() found no master: it claims at this instant if none shows up (Infinity: no). */
  #claimAt = Infinity;

  readonly #tockMs: () => number;

  constructor(step: OutputStep, tockMs: () => number) {
    super(step);
    this.#tockMs = tockMs;
  }

  begin(target: string, until: number, stepDown: boolean, term: number): void {
    this.pending = { target, until, stepDown, term };
  }

  /** The handoff in progress, if any: a slave follows only its target and claims newer than the master handing off (following.ts). */
  filtering(now: Instant): PendingHandoff | null {
    const pending = this.pending;
    return pending && now.mono < pending.until ? pending : null;
  }

  /** The target to name in our heartbeats: while we hand off and are no longer master. */
  announced(weAreMaster: boolean): string | undefined {
    const pending = this.pending;
    return pending?.stepDown && !weAreMaster ? pending.target : undefined;
  }

  /** A handoff in progress says another server claims, not `hostname`; `targetLive` says whether it still can. */
  blocksClaimBy(hostname: string, now: Instant, targetLive: (target: string) => boolean): boolean | 'target' {
    const pending = this.pending;
    if (!pending || now.mono >= pending.until) return false;
    if (pending.target === hostname) return 'target';
    return targetLive(pending.target);
  }

  /** Our promote() waits for the role. */
  get promoting(): boolean {
    return this.promoteUntil !== Infinity;
  }

  waitForPromotion(until: number): void {
    this.promoteUntil = until;
    this.#asked = null;
    this.#claimAt = Infinity;
  }

  /** promote() with no master known: claim at `at` unless a master or a handoff shows up first. */
  claimAt(at: number): void {
    this.#claimAt = at;
  }

  /** The promote() claim is due now (and is then no longer pending). */
  promoteClaimDue(now: Instant): boolean {
    if (now.mono < this.#claimAt) return false;
    this.#claimAt = Infinity;
    return this.promoteUntil !== Infinity;
  }

  /** A master showed up: a promote() claim waiting for answers is not made (it asks that master instead). */
  cancelClaim(): void {
    this.#claimAt = Infinity;
  }

  /**
   * A handoff to another server is in progress (ours, or one we heard a master announce):
   * asking now would reach a server that is master of nothing, and claiming would make two
   * masters.
   */
  inFlight(now: Instant, self: string): PendingHandoff | null {
    const pending = this.pending;
    return pending && pending.target !== self && now.mono < pending.until ? pending : null;
  }

  /**
   * Our promote() waits and `master` is master now: ask it, unless it is the one we asked.
   * Each master asked gets a tock to hand over.
   */
  shouldAsk(master: string, now: Instant): boolean {
    if (this.promoteUntil === Infinity || this.#asked === master) return false;
    this.#asked = master;
    this.promoteUntil = Math.max(this.promoteUntil, now.mono + this.#tockMs());
    return true;
  }

  /** The master we asked drains before it hands over (its heartbeats say so): wait until `until` at least. */
  keepWaiting(until: number): void {
    if (this.promoteUntil !== Infinity) this.promoteUntil = Math.max(this.promoteUntil, until);
  }

  /** We asked `master` for the role (the request is on its way). */
  asked(master: string): void {
    this.#asked = master;
  }

  protected override promoteSettled(): void {
    this.#asked = null;
    this.#claimAt = Infinity;
  }

  nextDeadline(): number {
    return Math.min(this.promoteUntil, this.#claimAt, this.pending ? this.pending.until : Infinity);
  }
}
