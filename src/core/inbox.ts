/**
 * What each kind of message does once it is admitted: heartbeats update the table (and the
 * term and checkpoint), hellos are answered, shutdown notices remove their sender, promote
 * requests start a handoff, application messages become events.
 */
import type { Address, HeartbeatMessage, HelloMessage, Message } from '../protocol/messages';
import { messageEvent, type Instant } from '../elector/types';
import type { Announcer } from './announce';
import type { FreshnessGuard } from './freshness';
import type { Handoffs } from './handoff';
import type { Instances } from './instances';
import type { Relays } from './relays';
import type { PromoteHold } from '../elector/hold';
import type { MemberTable, Peer } from './members';
import type { Roles } from './roles';
import type { Step } from './step';
import type { Timing } from './timing';

export interface InboxParts {
  timing: Timing;
  step: Step;
  members: MemberTable;
  instances: Instances;
  handoffs: Handoffs;
  announcer: Announcer;
  roles: Roles;
  guard: FreshnessGuard | null;
  relays: Relays;
  hold: PromoteHold;
}

export class Inbox {
  readonly #hostname: string;
  readonly #instanceId: string;
  readonly #maxServers: number;
  readonly #timing: Timing;
  readonly #step: Step;
  readonly #members: MemberTable;
  readonly #instances: Instances;
  readonly #handoffs: Handoffs;
  readonly #announcer: Announcer;
  readonly #roles: Roles;
  readonly #guard: FreshnessGuard | null;
  readonly #relays: Relays;
  readonly #hold: PromoteHold;
  #lastFullLogAt = -Infinity;

  constructor(self: { hostname: string; instanceId: string; maxServers: number }, parts: InboxParts) {
    this.#hostname = self.hostname;
    this.#instanceId = self.instanceId;
    this.#maxServers = self.maxServers;
    this.#timing = parts.timing;
    this.#step = parts.step;
    this.#members = parts.members;
    this.#instances = parts.instances;
    this.#handoffs = parts.handoffs;
    this.#announcer = parts.announcer;
    this.#roles = parts.roles;
    this.#guard = parts.guard;
    this.#relays = parts.relays;
    this.#hold = parts.hold;
  }

  receiveFromPeer(message: Message, from: Address, now: Instant): void {
    const step = this.#step;
    if (this.#members.sentBeforeDeparture(message.hostname, message.iid, message.seq, now)) {
      step.peerLog(9, `Ignoring a late ${message.action} from ${message.hostname}, which has shut down`);
      step.drop('stale');
      return;
    }
    const peer = this.#members.get(message.hostname);
    // A hello carries no state, only a question, so it is never stale: a starting server
    // sends it together with its first heartbeat, and when that heartbeat overtakes it the
    // hello must still be answered, or the joiner learns the master a tick late (SPEC 4.3).
    if (
      peer &&
      message.action !== 'hello' &&
      this.#instances.isStale(peer, message, now) &&
      !this.#instances.lateCommand(peer, message, now)
    ) {
      step.peerLog(9, `Ignoring a stale ${message.action} from ${message.hostname} (overtaken by a newer packet)`);
      step.drop('stale');
      return;
    }
    switch (message.action) {
      case 'heartbeat':
        this.#receiveHeartbeat(message, from, now, peer);
        break;
      case 'shutdown':
        this.#receiveShutdown(message, now);
        break;
      case 'hello':
        this.answerHello(message, from, now);
        break;
      case 'promote':
        if (peer && (peer.iid === undefined || message.iid === peer.iid)) this.#receivePromote(message.hostname, message.target, now);
        break;
      case 'message':
        // Only from a server we hear, in its current instance: a stranger cannot talk to the app.
        if (!peer || !this.#members.isLive(peer, now) || (peer.iid !== undefined && message.iid !== peer.iid)) {
          step.peerLog(9, `Ignoring a message from ${message.hostname}: not a live member`);
          break;
        }
        if (message.iid !== undefined && (message.seq ?? -1) > peer.seq) {
          this.#members.noteSkipped(peer, message.seq ?? -1, now);
          peer.seq = message.seq ?? -1;
        }
        if (message.to !== '*' && message.to !== this.#hostname) break;
        step.event(messageEvent(message));
        break;
    }
  }

  /**
   * Authenticated cluster, message not admitted. A stale one (replayed or reordered) is
   * ignored. An unverified instance is asked to prove it is alive; its hello is still
   * answered, since that answer is how it learns and admits us.
   */
  refuse(message: Message, from: Address, now: Instant, verdict: 'stale' | 'unverified'): void {
    const step = this.#step;
    step.drop(verdict);
    if (verdict === 'stale') {
      step.peerLog(
        9,
        `Ignoring a stale ${message.action} from ${message.hostname} (${from.address}): sequence ${message.seq} already seen`,
      );
      return;
    }
    step.peerLog(9, `Ignoring ${message.action} from ${message.hostname} (${from.address}): instance not yet verified`);
    if (message.action === 'hello') this.answerHello(message, from, now);
    this.#announcer.challenge(message.iid as string, now);
  }

  answerHello(message: HelloMessage, from: Address, now: Instant): void {
    // A challenge addressed to another instance is theirs to answer.
    if (message.for !== undefined && message.for !== this.#instanceId) return;
    if (this.#guard) this.#guard.answer(message.iid as string, message.seq as number);
    this.#step.peerLog(9, `Hello from ${message.hostname} (${from.address}), answering`);
    this.#announcer.answerSoon(now);
  }

  #receiveHeartbeat(message: HeartbeatMessage, from: Address, now: Instant, existing: Peer | undefined): void {
    const members = this.#members;
    if (existing) {
      if (existing.iid !== message.iid && !this.#instances.switchInstance(existing, message, from, now)) return;
      members.follow(existing, message, from.address, now.mono, now);
      existing.port = from.port;
      existing.heard++;
      if (this.#step.wants(10)) this.#step.peerLog(10, `Heartbeat from ${message.hostname}`, existing.record);
      this.#noteHeartbeat(message, now);
      return;
    }
    if (members.size + 1 >= this.#maxServers) {
      this.#step.drop('table-full');
      if (now.mono - this.#lastFullLogAt >= this.#timing.tockMs) {
        this.#lastFullLogAt = now.mono;
        this.#step.logOnce(
          'table-full',
          2,
          `Server table is full (${this.#maxServers}); ignoring new server ${message.hostname} from ${from.address}`,
        );
      }
      return;
    }
    const peer = members.add(message, from.address, now);
    peer.port = from.port;
    this.#roles.noteHostname(message.hostname);
    this.#step.peerLog(5, `Server joined the cluster: ${message.hostname} (${message.ip})`);
    this.#step.event({ type: 'addserver', server: { ...peer.record } });
    this.#noteHeartbeat(message, now);
  }

  /** Terms only grow; a departing master's handoff tells everyone who claims next. */
  #noteHeartbeat(message: HeartbeatMessage, now: Instant): void {
    this.#roles.noteTerm(message, now);
    // Our master drains its work before it hands us the role: our promote() keeps waiting.
    if (message.drain === this.#hostname && message.master && message.hostname === this.#roles.masterHostname)
      this.#handoffs.keepWaiting(now.mono + this.#timing.tockMs);
    if (this.#relays.note(message.hostname, message.lead, now.mono) && message.lead) this.#roles.noteHostname(message.lead.h);
    // Our master's last heartbeats as it hands off carry its newest checkpoint to the next one.
    if (message.handoff !== undefined && !message.master && message.hostname === this.#roles.masterHostname)
      this.#roles.takeCheckpoint(message.ckpt ?? null);
    if (message.handoff !== undefined && !message.master) {
      // A handoff to us from before our last claim (a heartbeat of it overtaken by the rest
      // of the story: we took the role, and handed it on since) is over: claiming on it again
      // made a second master.
      if (message.handoff === this.#hostname && (message.term ?? 0) < this.#roles.lastClaimed) return;
      this.#step.peerLog(4, `${message.hostname} hands the master role to ${message.handoff}`);
      this.#handoffs.begin(message.handoff, now.mono + this.#timing.tockMs, false, message.term ?? 0);
      this.#roles.settled = true;
    }
  }

  #receivePromote(requester: string, target: string, now: Instant): void {
    if (target !== this.#hostname || !this.#roles.master) return;
    const peer = this.#members.get(requester);
    if (!peer || !peer.record.eligible || !this.#members.isLive(peer, now)) {
      this.#step.peerLog(4, `Ignoring promote request from ${requester}: not a live eligible server`);
      return;
    }
    // The app drains its master work first (elector/hold.ts); it tells us when.
    if (this.#hold.hold(requester, now.mono)) return;
    this.#step.peerLog(4, `${requester} asked for the master role: handing off`);
    this.handOff(requester, now);
  }

  handOff(target: string, now: Instant): void {
    this.#handoffs.begin(target, now.mono + this.#timing.tockMs, true, this.#roles.held);
    this.#roles.relinquish(`handing off to ${target}`);
    this.#roles.sendHeartbeat(now, target);
  }

  #receiveShutdown(message: Message, now: Instant): void {
    const members = this.#members;
    if (message.iid !== undefined) members.noteDeparture(message.hostname, message.iid, message.seq, now);
    const peer = members.get(message.hostname);
    if (!peer) return;
    // A notice from another instance than the one we hear (or an anonymous one for a
    // server that names its instance) is not that server leaving.
    if (peer.iid !== undefined && message.iid !== peer.iid) {
      if (peer.other && message.iid === peer.other.iid) {
        this.#instances.otherLeft(peer, message.hostname);
        return;
      }
      this.#step.peerLog(5, `Ignoring shutdown notice for ${message.hostname}: instance id does not match`);
      return;
    }
    if (this.#instances.adoptNamesake(message.hostname, peer, now, 'is shutting down')) return;
    this.#step.peerLog(4, `Server ${message.hostname} is shutting down`);
    if (message.hostname === this.#roles.masterHostname) this.#roles.masterLost(message.hostname, now.mono, 'shutdown notice');
    this.#relays.departed(message.hostname, now.mono, this.#timing.holdoffMs);
    members.clearClaim(message.hostname, peer);
    if (peer.record.locked) members.markLeft(message.hostname, peer, now);
    else members.remove(message.hostname, peer);
  }
}
