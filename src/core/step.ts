/**
 * What one call into the core produces (elector/step.ts), and what only the UDP election
 * notes within a step: a peer heard again after missing heartbeats.
 */
import { OutputStep } from '../elector/step';

export class Step extends OutputStep {
  /** A peer that had missed a heartbeat was heard again in this step (see MemberTable.follow). */
  peerReturned = false;
}
