/**
 * The routine heartbeat: the fast path of nearly every packet an idle cluster carries.
 *
 * A peer we follow sends its next heartbeat (same instance, the next sequence number) saying
 * what its last one said in every field an election rule reads (master, eligible, priority,
 * term, tick; no handoff, drain, or new checkpoint), while no deadline of ours has passed and
 * nothing is under way (we are master or slave and settled, no rival claim, no handoff, promote,
 * held request, stall drain, preemption or relayed word in play). Its bookkeeping still runs in full
 * (inbox.ts: the table row, liveness, sequence, words it relays); what is skipped is the
 * election rules (roles.ts#evaluate), which would find nothing to do: no input of theirs
 * changed, and none of their deadlines is due (each is in the wake-up time, not yet reached).
 *
 * Skipping them is the point: on an idle server in code V8 has not optimized, the rules were
 * the larger half of a heartbeat's cost. `npm run sim -- --check-routine` runs every server
 * beside a twin that never takes this path and fails on the first Output or state that differs.
 */
import type { HeartbeatMessage, Message } from '../protocol/messages';
import type { Instant } from '../elector/types';
import type { CoreParts } from './assemble';

export class Routine {
  readonly #p: CoreParts;
  /** Heartbeats that took the fast path (a counter for tests and the bench). */
  taken = 0;

  constructor(parts: CoreParts) {
    this.#p = parts;
  }

  /**
   * Before the bookkeeping: is this a routine heartbeat, in a quiet state, asked before
   * `wakeAt` (the wake-up time of our last step)?
   */
  qualifies(message: Message, wakeAt: number, now: Instant): message is HeartbeatMessage {
    if (message.action !== 'heartbeat' || !(now.mono < wakeAt)) return false;
    const { members, roles, handoffs, hold, preempt, relays, words, announcer, timing } = this.#p;
    if (preempt.enabled || words.relying || relays.changed || hold.target !== null) return false;
    if (!roles.settled || roles.role === 'none' || handoffs.pending !== null || handoffs.promoting) return false;
    const peer = members.get(message.hostname);
    if (peer === undefined || peer.other !== null || message.iid === undefined || message.iid !== peer.iid) return false;
    if (message.seq !== peer.seq + 1 || peer.record.locked) return false;
    const record = peer.record;
    const term = message.term ?? 0;
    if (message.master !== record.master || message.eligible !== record.eligible) return false;
    if ((message.prio ?? 0) !== record.priority || term !== record.term || term > roles.term) return false;
    // A claim is routine only from the master we follow; from anyone else it is a rule's business.
    if (message.master && (roles.master || message.hostname !== roles.masterHostname)) return false;
    if (roles.master && term > roles.held) return false;
    if (message.handoff !== undefined || message.drain !== undefined) return false;
    const ckpt = message.ckpt;
    const known = peer.ckpt;
    if (ckpt === undefined ? known !== null : known === null || ckpt.t !== known.t || ckpt.v !== known.v) return false;
    if (message.tick !== undefined && message.tick < timing.tickMs) return false;
    return !announcer.draining(now) && members.isLive(peer, now);
  }

  /**
   * After the bookkeeping: it noticed nothing the rules must look at, and the claims are as a
   * settled cluster's (none beside us as master; only ours as slave). A rival's claim is
   * answered on every step (a `conflict` event), whoever's heartbeat the step is for.
   */
  stillQuiet(now: Instant): boolean {
    const { step, relays, roles, words, members } = this.#p;
    if (step.peerReturned || step.membersMayHaveChanged || relays.changed) return false;
    const claimants = words.claimants(members.liveClaimants(now), now);
    if (roles.master ? claimants.length !== 0 : claimants.length !== 1 || claimants[0] !== roles.masterHostname) return false;
    this.taken++;
    return true;
  }
}
