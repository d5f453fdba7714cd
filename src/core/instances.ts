/**
 * Processes behind hostnames: restarts, two live processes with one hostname, and packets
 * of an instance that arrive late or twice.
 *
 * A hostname is followed in one instance (by instance id). Another instance speaking is a
 * restart, or, when the one followed before speaks again, a duplicate hostname: the one
 * that claims master, else the lower instance id, keeps the name (`outranks`); the other
 * never claims and steps down, and every server that hears both follows the keeper only.
 * Our own hostname announced by another process is a "namesake": we yield to it by the
 * same rule.
 */
import type { Address, HeartbeatMessage, Message } from '../protocol/messages';
import type { Instant, ProcessRef } from '../elector/types';
import { snapshot, type MemberTable, type Peer } from './members';
import type { Step } from './step';
import type { Timing } from './timing';
import { isStaleSeq } from '../elector/seq';

/**
 * Without a secret anyone can send a packet under any name, so the duplicate rules act
 * only on a process heard at least this often: they must not let one forged packet do
 * more than it could before them.
 */
const OPEN_DUPLICATE_EVIDENCE = 2;

/** Another live process that announces our own hostname. */
interface Namesake {
  iid: string;
  address: string;
  pid: number | undefined;
  master: boolean;
  lastHeard: number;
  /** Packets heard from it in a row. */
  heard: number;
}

export interface Self {
  hostname: string;
  instanceId: string;
  ip: string;
  /** Our process id, to name this process in a duplicate report. */
  pid?: number | undefined;
  /** Authenticated cluster: an admitted instance is alive by proof. */
  authenticated: boolean;
}

/**
 * Of two processes announcing one hostname, does A keep the name over B? The one that
 * claims master (so a running master is never unseated by a newcomer), else the lower
 * instance id; an original server, which has none (''), wins a tie and never yields. Every
 * server computes this from the same two heartbeats, so all agree on the keeper.
 */
export function outranks(aMaster: boolean, aIid: string, bMaster: boolean, bIid: string): boolean {
  if (aMaster !== bMaster) return aMaster;
  return aIid < bIid;
}

export class Instances {
  readonly #self: Self;
  readonly #timing: Timing;
  readonly #step: Step;
  readonly #members: MemberTable;
  #namesake: Namesake | null = null;
  #lastDuplicateLogAt = -Infinity;
  /** Monotonic ms of our start: packets just after it may be our previous process's last ones. */
  startedAt = 0;

  constructor(self: Self, timing: Timing, step: Step, members: MemberTable) {
    this.#self = self;
    this.#timing = timing;
    this.#step = step;
    this.#members = members;
  }

  /** Monotonic ms when the namesake falls silent (we may claim again then), or Infinity. */
  nextDeadline(now: Instant): number {
    const gone = this.#namesake ? this.#namesake.lastHeard + this.#timing.deadAfterMs : Infinity;
    return gone > now.mono ? gone : Infinity;
  }

  /**
   * Another process with our hostname (its packets never touch the table). Without a
   * secret, packets in the first moments after our start may be our previous process's
   * last ones, still in flight; authenticated, an admitted instance is alive by proof.
   */
  receiveOwnHostname(message: Message, from: Address, now: Instant, weAreMaster: boolean): void {
    if (!this.#self.authenticated && now.mono - this.startedAt < this.#timing.holdoffMs) return;
    const iid = message.iid ?? '';
    const current = this.#namesake;
    const known = current?.iid === iid && now.mono - current.lastHeard < this.#timing.deadAfterMs ? current : null;
    if (message.action === 'shutdown') {
      if (known) this.#namesake = null;
      return;
    }
    const master = message.action === 'heartbeat' ? message.master : (known?.master ?? false);
    const pid = message.action === 'heartbeat' ? message.pid : known?.pid;
    const namesake: Namesake = { iid, address: from.address, pid, master, lastHeard: now.mono, heard: (known?.heard ?? 0) + 1 };
    this.#namesake = namesake;
    if (!this.#confirmed(namesake) || now.mono - this.#lastDuplicateLogAt < this.#timing.tockMs) return;
    this.#lastDuplicateLogAt = now.mono;
    const ours: ProcessRef = { iid: this.#self.instanceId, address: this.#self.ip || 'this server', self: true };
    if (this.#self.pid !== undefined) ours.pid = this.#self.pid;
    const theirs: ProcessRef = { iid, address: from.address };
    if (pid !== undefined) theirs.pid = pid;
    const weYield = outranks(master, iid, weAreMaster, this.#self.instanceId);
    this.#reportDuplicate(this.#self.hostname, weYield ? theirs : ours, weYield ? ours : theirs, true);
  }

  /** Another live process with our hostname outranks us: we neither claim nor keep master. */
  yieldsName(now: Instant, weAreMaster: boolean): boolean {
    const namesake = this.#namesake;
    if (!namesake || now.mono - namesake.lastHeard >= this.#timing.deadAfterMs) return false;
    return this.#confirmed(namesake) && outranks(namesake.master, namesake.iid, weAreMaster, this.#self.instanceId);
  }

  /** Forget the other process with our hostname once it has been silent for a tock. */
  expireNamesake(now: Instant): void {
    const namesake = this.#namesake;
    if (!namesake || now.mono - namesake.lastHeard < this.#timing.deadAfterMs) return;
    this.#namesake = null;
    if (this.#confirmed(namesake)) this.#step.peerLog(4, `The other process named ${this.#self.hostname} (${namesake.address}) is gone`);
  }

  /**
   * Same instance, sequence not above the last one heard: reordered or repeated. Without a
   * secret, only within OPEN_STALE_WINDOW of the last: a forger that copies an instance id
   * and sends a huge sequence number must not make the real server's packets look old
   * after it stops (and replays are not a defence an open cluster has anyway).
   */
  isStale(peer: Peer, message: Message, now: Instant): boolean {
    if (message.iid === undefined || message.seq === undefined) return false;
    if (message.iid === peer.iid) return this.#older(message.seq, peer.seq, peer.lastHeard, peer, now);
    const other = peer.other;
    return message.iid === other?.iid && this.#older(message.seq, other.seq, other.lastHeard, peer, now);
  }

  /**
   * Authenticated, a number at or below the last is old, always. Without a secret, only
   * close below it, and only while the instance is live: a forger's number must not keep
   * a server out of anyone's view after the forger stops (a locked record, kept though
   * silent, would keep it out for good).
   */
  #older(seq: number, last: number, lastHeard: number, peer: Peer, now: Instant): boolean {
    return isStaleSeq(seq, last, lastHeard, now.mono, peer.lane.deadAfterMs, this.#self.authenticated);
  }

  /**
   * A promote or an application message older than the newest packet of its instance, but
   * one we skipped over and have not seen: the heartbeat sent after it overtook it. Acted
   * on once; a replay of it, or of anything seen before, is still stale.
   */
  lateCommand(peer: Peer, message: Message, now: Instant): boolean {
    if ((message.action !== 'promote' && message.action !== 'message') || message.iid !== peer.iid || message.seq === undefined)
      return false;
    if (!peer.skipped.take(message.seq, now.mono)) return false;
    this.#step.peerLog(9, `Accepting a late ${message.action} from ${message.hostname} (overtaken by a newer packet, not seen before)`);
    return true;
  }

  /**
   * A heartbeat for a known hostname from another instance than the one we follow: a
   * restart, or, when the instance we followed before speaks again, two live processes
   * with one hostname. Returns whether to follow the sender from now on.
   */
  switchInstance(peer: Peer, message: HeartbeatMessage, from: Address, now: Instant): boolean {
    const timing = this.#timing;
    const other = peer.other && now.mono - peer.other.lastHeard < peer.lane.deadAfterMs ? peer.other : null;
    if (!other || other.iid !== message.iid) {
      // A new instance: the old process is gone (a restart), or this is the first sign of a duplicate.
      if (peer.iid !== undefined) this.#step.peerLog(5, `Server ${message.hostname} restarted (new instance)`);
      peer.other = snapshot(peer);
      peer.duplicate = false;
      peer.iidSince = now.mono;
      peer.heard = 0;
      return true;
    }
    if (!peer.duplicate && now.mono - peer.iidSince < timing.holdoffMs) {
      // The previous process's last packets, overtaken in flight by the new one's first.
      this.#step.peerLog(9, `Ignoring a late packet from the previous instance of ${message.hostname}`);
      this.#step.drop('stale');
      return false;
    }
    other.heard++;
    if (!peer.duplicate && !(this.#confirmed(other) && this.#confirmed(peer))) {
      // Without a secret, one packet of each is no proof of two processes: follow the
      // sender back, as before these rules, until both have spoken twice.
      const returning = other.heard - 1;
      peer.other = snapshot(peer);
      peer.iidSince = now.mono;
      peer.heard = returning;
      return true;
    }
    peer.duplicate = true;
    other.seq = message.seq ?? -1;
    other.lastHeard = now.mono;
    other.address = from.address;
    other.heartbeat = message;
    const sender: ProcessRef = { iid: message.iid ?? '', address: from.address };
    if (message.pid !== undefined) sender.pid = message.pid;
    const followed: ProcessRef = { iid: peer.iid ?? '', address: peer.address };
    if (peer.pid !== undefined) followed.pid = peer.pid;
    const senderKeeps = outranks(message.master, sender.iid, peer.record.master, followed.iid);
    if (now.mono - peer.reportedAt >= timing.tockMs) {
      peer.reportedAt = now.mono;
      this.#reportDuplicate(message.hostname, senderKeeps ? sender : followed, senderKeeps ? followed : sender, false);
    }
    if (!senderKeeps) {
      this.#step.drop('yielded');
      return false;
    }
    peer.other = snapshot(peer);
    peer.iidSince = now.mono;
    peer.heard = other.heard - 1;
    return true;
  }

  /**
   * When the process we follow for a duplicated hostname leaves (notice or silence) and the
   * other one is still live, follow the other from now on. Returns whether it did.
   */
  adoptNamesake(hostname: string, peer: Peer, now: Instant, why: string): boolean {
    const other = peer.duplicate && peer.other && now.mono - peer.other.lastHeard < peer.lane.deadAfterMs ? peer.other : null;
    if (!other?.heartbeat) return false;
    this.#step.peerLog(4, `Server ${hostname} (${peer.address}) ${why}; its namesake at ${other.address} remains`);
    this.#members.follow(peer, other.heartbeat, other.address, other.lastHeard, now);
    peer.iid = other.iid;
    peer.seq = other.seq;
    peer.skipped.clear();
    peer.heard = other.heard;
    peer.other = null;
    peer.duplicate = false;
    return true;
  }

  /** The other instance of a duplicated hostname sent a shutdown notice: it is gone, the name is settled. */
  otherLeft(peer: Peer, hostname: string): void {
    this.#step.peerLog(4, `The other process named ${hostname} (${peer.other?.address}) is shutting down`);
    peer.other = null;
    peer.duplicate = false;
  }

  /** Is a second process real? Authenticated, an admitted instance is alive by proof; without a secret, evidence must repeat. */
  #confirmed(instance: { heard: number }): boolean {
    return this.#self.authenticated || instance.heard >= OPEN_DUPLICATE_EVIDENCE;
  }

  /** Each process named so an operator can find it: its host, its pid when it sends one, its instance id, and which one is us. */
  #reportDuplicate(hostname: string, keeper: ProcessRef, yielder: ProcessRef, self: boolean): void {
    const name = (side: ProcessRef): string =>
      `${side.address}${side.pid !== undefined ? ` pid ${side.pid}` : ''} (instance ${side.iid || 'without id'}${side.self ? ', this process' : ''})`;
    this.#step.logOnce(
      `duplicate:${hostname}`,
      1,
      `DUPLICATE HOSTNAME: two live processes announce ${hostname}: ${name(keeper)} keeps the name, ${name(yielder)} never claims master until it stops`,
    );
    this.#step.event({ type: 'duplicate', hostname, keeper, yielder, self });
  }
}
