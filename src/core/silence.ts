/**
 * What a silent peer's deadline does (SPEC §4): a peer past its deadline is removed, unless a
 * server we hear still hears it as master (a cut between the two of us only, relays.ts), it
 * is the other process of a hostname we follow (instances.ts), or it is locked (kept, but
 * master of nothing and a member no more). After a long stall of ours nobody is removed until
 * the answers to our hello had time to come.
 *
 * Apart from roles.ts because it judges peers, not our role: roles.ts runs it first in each
 * evaluation and learns only whether the master we followed was among the removed.
 */
import type { Instant } from '../elector/types';
import type { Instances } from './instances';
import type { MemberTable } from './members';
import type { Quorum } from './quorum';
import type { Relays } from './relays';
import type { Step } from './step';
import type { Words } from './words';

export interface SilenceParts {
  step: Step;
  members: MemberTable;
  instances: Instances;
  quorum: Quorum;
  relays: Relays;
  words: Words;
}

export class Silence {
  readonly #p: SilenceParts;
  /** After a long stall, peers are not removed before the answers to our hello had time to come. */
  #holdUntil = -Infinity;

  constructor(parts: SilenceParts) {
    this.#p = parts;
  }

  /** Remove nobody before `until` (monotonic ms). */
  holdUntil(until: number): void {
    this.#holdUntil = until;
  }

  /** Act on every peer past its deadline; `masterSilent` is told, before its removal, of the master we follow. */
  act(now: Instant, master: string, masterSilent: (hostname: string, lastHeard: number) => void): void {
    const { members, instances, quorum, step, relays, words } = this.#p;
    // A master heard of through another server is kept while that word holds: look again at
    // the silent ones whenever words change, and while we rely on one (as it ages).
    if (words.relying || relays.changed) {
      relays.changed = false;
      members.recheck();
    }
    words.relying = false;
    for (const [hostname, peer] of now.mono < this.#holdUntil ? [] : members.dead(now)) {
      // Silent to us, but a server we hear hears it as master: a cut between the two of us only.
      if (words.says(hostname, now)) {
        words.relying = true;
        continue;
      }
      if (peer.record.master && !members.hasLeft(peer)) quorum.masterFellSilent(peer);
      // Of two processes with this hostname, the one we followed died: the other is still
      // here, locked or not.
      if (instances.adoptNamesake(hostname, peer, now, 'went silent')) continue;
      if (peer.record.locked) {
        // Kept, being locked, but a silent server is master of nothing: its record must not
        // show a second master beside the one elected after it. Nor is it a member any more.
        if (!members.hasLeft(peer)) {
          members.markSilent(hostname, peer);
          step.membersMayHaveChanged = true;
        }
        members.clearClaim(hostname, peer);
        continue;
      }
      const silentMs = Math.round(now.mono - peer.lastHeard);
      if (hostname === master) {
        step.peerLog(4, `Master ${hostname} silent for ${silentMs} ms; electing a new one`);
        masterSilent(hostname, peer.lastHeard);
      }
      step.peerLog(5, `Removing dead server from cluster: ${hostname} (silent for ${silentMs} ms)`);
      members.remove(hostname, peer);
    }
  }

  /** A silent peer is due for removal now (not locked, not kept on a follower's word). */
  due(now: Instant): boolean {
    if (now.mono < this.#holdUntil) return false;
    for (const [hostname, peer] of this.#p.members.dead(now)) {
      if (!peer.record.locked && !this.#p.words.says(hostname, now)) return true;
    }
    return false;
  }
}
