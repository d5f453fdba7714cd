/**
 * Two masters (after a partition heals, say; SPEC §4.7): the one that ranks later relinquishes
 * (or exits, with exit_on_conflict); the one that ranks first keeps the role, raises its term
 * above the rival's and re-announces at once, so the app on the winner sees no needless
 * slave/master flap and the fencing token still only grows. A master heard of only through a
 * slave that hears it (relays.ts) is a rival like any other.
 *
 * Apart from roles.ts because it is one rule with its own outcome: roles.ts finds the rivals
 * and carries out the role change this asks for (the `Contender`, which Roles is).
 */
import { MAX_TERM, MAX_TERM_STEP } from '../protocol/limits';
import type { Instant } from '../elector/types';
import type { MemberTable } from './members';
import type { Step } from './step';

/** What the rule reads of us and asks of us. */
export interface Contender {
  readonly hostname: string;
  readonly term: number;
  readonly held: number;
  readonly exitOnConflict: boolean;
  compare(a: string, b: string): number;
  /** The term a claimant claims (its followers' word when fresher). */
  claimTerm(hostname: string, now: Instant): number;
  /** " (heard through another server)" for a log line, when that is how we know it. */
  heardThrough(hostname: string, now: Instant): string;
  claimAbove(above: number, now: Instant, why: string): void;
  exit(reason: string): void;
  relinquish(reason: string): void;
  sendHeartbeat(now: Instant): void;
}

export class Conflict {
  readonly #me: Contender;
  readonly #step: Step;
  readonly #members: MemberTable;

  constructor(me: Contender, step: Step, members: MemberTable) {
    this.#me = me;
    this.#step = step;
    this.#members = members;
  }

  /** We are master and hear `rivals` claim too: true when we are master no more (we yielded). */
  face(rivals: string[], now: Instant): boolean {
    const me = this.#me;
    const step = this.#step;
    const rival = rivals.sort((a, b) => me.compare(a, b))[0] as string;
    const through = me.heardThrough(rival, now);
    step.event({ type: 'conflict', hostname: rival });
    if (me.compare(me.hostname, rival) < 0) {
      // We rank first, so we are the one the recomputation picks: keep the role, claim a
      // term above the rival's, and say so at once; the rival yields when it hears us
      // (itself, or through the servers that follow us).
      step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival}${through} also thinks it is master; we rank first and keep the role`);
      // Above every rival's term, unless one is beyond what we adopt from one packet (a
      // forgery past the ceiling): raising ours to it on every evaluation would ratchet
      // without end.
      let above = me.term;
      let rivalTerm = 0;
      for (const claimant of rivals) {
        const term = me.claimTerm(claimant, now);
        rivalTerm = Math.max(rivalTerm, term);
        if (term >= above && term < MAX_TERM && term - me.term < MAX_TERM_STEP) above = term;
      }
      if (above > me.held) me.claimAbove(above, now, `${rival} claimed term ${rivalTerm}`);
      // Our table shows the rivals as what they are about to be, as a slave's shows a
      // superseded claim (following.ts): they yield when they hear us.
      const members = this.#members;
      for (const claimant of rivals) {
        if (members.get(claimant)?.record.master && me.claimTerm(claimant, now) < me.held) members.showMaster(claimant, false);
      }
      return false;
    }
    step.logOnce('conflict', 1, `MASTER CONFLICT: ${rival}${through} also thinks it is master and ranks first`);
    if (me.exitOnConflict) {
      me.exit(`master conflict with ${rival}`);
      return false;
    }
    me.relinquish(`master conflict with ${rival}`);
    me.sendHeartbeat(now);
    return true;
  }
}
