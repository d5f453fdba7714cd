/**
 * Whether we may claim master now, and who ranks first (SPEC §4, §6):
 *
 *  - we claim only when eligible, settled (a tock of listening, or a master seen), with a
 *    quorum, no lease of a silent master still running, the name ours, a term left to take,
 *    no handoff naming another server, and no live eligible peer ranking before us;
 *  - promote() may claim without being first in rank or having listened, but not against a
 *    handoff in flight, without a quorum, or under a name another process keeps;
 *  - "ranks first" = higher priority, then the hostname that sorts first (elector/rank.ts).
 *
 * Apart from roles.ts because these are questions, not changes: they read the table and our
 * state (the `Candidate`, which Roles is) and decide nothing themselves.
 */
import { MAX_TERM } from '../protocol/limits';
import { nextTerm } from '../protocol/terms';
import type { Instant, ServerRecord } from '../elector/types';
import { compareRank } from '../elector/rank';
import type { Handoffs } from './handoff';
import type { Instances } from './instances';
import type { MemberTable } from './members';
import type { Quorum } from './quorum';
import type { Step } from './step';
import type { Words } from './words';

/** What the rules read of our own state. */
export interface Candidate {
  readonly hostname: string;
  readonly priority: number;
  readonly self: ServerRecord;
  readonly settled: boolean;
  readonly stopped: boolean;
  readonly master: boolean;
  /** The highest term we have seen or held. */
  readonly term: number;
  /** The slot our next claim is in. */
  readonly slot: number;
}

export interface CandidacyParts {
  step: Step;
  members: MemberTable;
  instances: Instances;
  quorum: Quorum;
  handoffs: Handoffs;
  words: Words;
}

export class Candidacy {
  readonly #me: Candidate;
  readonly #p: CandidacyParts;

  constructor(me: Candidate, parts: CandidacyParts) {
    this.#me = me;
    this.#p = parts;
  }

  mayClaim(now: Instant): boolean {
    const me = this.#me;
    const { members, instances, quorum, handoffs } = this.#p;
    if (!me.self.eligible || !me.settled || me.stopped || !quorum.has(now, me.self.eligible, true) || instances.yieldsName(now, me.master))
      return false;
    if (quorum.leaseHeld(now)) return false;
    if (nextTerm(me.term, me.slot) > MAX_TERM) {
      this.#p.step.logOnce('term-exhausted', 1, `Cannot become master: the term (fencing token) has reached ${MAX_TERM} and cannot grow`);
      return false;
    }
    // A target we have not heard yet (we just started) is about to claim: its claim is on its way.
    const handoff = handoffs.blocksClaimBy(me.hostname, now, (target) => {
      const peer = members.get(target);
      return peer === undefined || (peer.record.eligible && members.isLive(peer, now));
    });
    if (handoff === 'target') return true;
    if (handoff) return false; // it claims, not us
    for (const [hostname, peer] of members.entries()) {
      if (peer.record.eligible && members.isLive(peer, now) && this.compare(hostname, me.hostname) < 0) return false;
    }
    return true;
  }

  /** promote() may claim without being first in rank or having listened a tock, but not against these. */
  mayClaimPromoted(now: Instant): boolean {
    const me = this.#me;
    const { instances, quorum, handoffs } = this.#p;
    return (
      me.self.eligible &&
      !me.stopped &&
      !handoffs.inFlight(now, me.hostname) &&
      quorum.has(now, true, true) &&
      !instances.yieldsName(now, false) &&
      nextTerm(me.term, me.slot) <= MAX_TERM
    );
  }

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  compare(a: string, b: string): number {
    return compareRank(a, this.#priorityOf(a), b, this.#priorityOf(b));
  }

  /** Ours, a peer's as it last said, or that of a master we hear of only through its follower. */
  #priorityOf(hostname: string): number {
    if (hostname === this.#me.hostname) return this.#me.priority;
    const peer = this.#p.members.get(hostname);
    if (peer) return peer.record.priority;
    return this.#p.words.priorityOf(hostname);
  }

  /** The live eligible peer that ranks first, if any. */
  bestPeer(now: Instant): string | null {
    const { members } = this.#p;
    let best: string | null = null;
    for (const [hostname, peer] of members.entries()) {
      if (!peer.record.eligible || !members.isLive(peer, now)) continue;
      if (best === null || this.compare(hostname, best) < 0) best = hostname;
    }
    return best;
  }
}
