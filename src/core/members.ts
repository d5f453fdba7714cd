/**
 * The member table: every peer we hear, its record, and when it dies.
 *
 * Within a lane (peers judged by one timing) peers are kept in the order we last heard
 * them, oldest first: a heartbeat moves its peer to the end (`place`). Every peer of a lane
 * dies the same time after it was last heard, so the unlocked dead peers are a prefix and
 * the next deadline is that of the first live peer; each packet then costs O(1) instead of
 * a walk over the whole table (with 1000 servers the walk cost every server O(N²) per
 * tick). A locked peer whose shutdown notice makes it dead at once is moved to the front,
 * which keeps this true.
 *
 * Records here are the core's own. Applications read copies (the shell's `servers`
 * view); nothing an application writes there reaches this table, and locking a record is
 * an explicit input (`setLocked`).
 *
 * Kept apart, each behind the table: the claimants, live and by term (claimants.ts); the
 * timing peers say they keep (peer-timing.ts); which rows the application's view must copy
 * again (view-changes.ts); the member set and departures (member-set.ts).
 *
 * The etcd mode has a table of its own (coordinator/table.ts): there the store is the
 * truth and a member is there while its lease lives, so it keeps no liveness deadlines,
 * lanes or heard order; both keep the same records (elector/types.ts ServerRecord), rank
 * by the same rule (elector/rank.ts) and report members the same way.
 */
import type { HeartbeatMessage } from '../protocol/messages';
import { healthOf, type Instant, type ServerRecord } from '../elector/types';
import { SkippedSeqs } from '../elector/seq';
import type { Step } from './step';
import type { Timing } from './timing';
import { Lane } from './lanes';
import { Departures, MemberSet } from './member-set';
import type { Relays } from './relays';
import { Claimants } from './claimants';
import { PeerTiming } from './peer-timing';
import { ViewChanges } from './view-changes';

export type { Lane } from './lanes';
export { snapshot, type OtherInstance, type Peer } from './peer';
import type { Peer } from './peer';

export { MAX_PACE_UP } from './peer-timing';

const NONE: ReadonlyArray<[string, Peer]> = Object.freeze([]);
/** A peer silent this many of its ticks, heard again, has returned (a heal, or a lost heartbeat). */
const RETURN_AFTER_TICKS = 1.25;

export class MemberTable {
  readonly #timing: Timing;
  readonly #step: Step;
  readonly #peers = new Map<string, Peer>();
  /** The claimants among the peers, live and by term (claimants.ts). */
  readonly claimants: Claimants;
  /** Locked peers kept after their shutdown notice: they left (not master), so they hold no lease. */
  #leftLocked = new WeakSet<Peer>();
  readonly #view: ViewChanges;
  readonly #peerTiming: PeerTiming;
  /**
   * The eligible peers in the table that are not silent (a locked peer that left or fell
   * silent stays in the table but not here): the member set without ourselves, kept as
   * peers come and go, so a join costs no sort of everyone.
   */
  readonly #set = new MemberSet();
  readonly #departed: Departures;
  /** Lanes by the timing their peers promise; 'local' for peers that promise none. */
  #lanes = new Map<string, Lane<Peer>>();
  readonly #local: Lane<Peer>;

  /**
   * No peer reaches its deadline before this (monotonic ms; -Infinity: look). Heartbeats
   * only move deadlines later, so it stays true as packets arrive; what can bring a
   * deadline nearer (a join into another lane, a shutdown of a locked peer, a re-sort, a
   * timing reload, an unlock) sets it back to -Infinity.
   */
  #earliest = -Infinity;
  #frozenLanes = 0;

  readonly #relays: Relays;

  constructor(timing: Timing, step: Step, maxDeparted: number, relays: Relays) {
    this.#timing = timing;
    this.#step = step;
    this.#relays = relays;
    this.#departed = new Departures(maxDeparted, timing);
    this.#local = new Lane<Peer>('local', timing);
    this.#lanes.set('local', this.#local);
    // With one lane every peer is judged by the same span, and a claimant's liveness changes
    // only by time, a new hearing or a new span.
    this.claimants = new Claimants(this.#peers, () => (this.#lanes.size === 1 ? this.#local.deadAfterMs : Number.NaN));
    // Past the table's own bound, the view is rebuilt instead.
    this.#view = new ViewChanges(maxDeparted + 64);
    this.#peerTiming = new PeerTiming(timing, step);
  }

  /**
   * Our timing changed (a config reload): every peer is judged by the longer of the timing
   * before and ours until a heartbeat of it shows that it keeps our pace (see `follow`).
   * "Heard again" is not enough: a heartbeat sent before our new timing reached it says
   * nothing of when its next comes, and with check_beats 1 judging it by our new deadline
   * from then removed live servers.
   */
  freezeTiming(before: { tickMs: number; checkBeats: number }): void {
    this.#earliest = -Infinity;
    if (this.#local.peers.size === 0) return;
    const frozen = new Lane<Peer>(`was ${before.tickMs}/${before.checkBeats} #${++this.#frozenLanes}`, this.#timing, { ...before });
    this.#lanes.set(frozen.key, frozen);
    for (const [hostname, peer] of this.#local.peers) this.#join(frozen, hostname, peer);
    this.#local.peers.clear();
  }

  /** The eligible members of the table, sorted (ourselves not included). */
  get eligible(): readonly string[] {
    return this.#set.list;
  }

  /** Counts changes of the member set, so the facade reports it only when it changed. */
  get membersVersion(): number {
    return this.#set.version;
  }

  #setMember(hostname: string, member: boolean): void {
    this.#set.set(hostname, member);
  }

  /** After our timing changed (the shared Timing already holds the new one). */
  timingChanged(): void {
    this.#earliest = -Infinity;
    this.#peerTiming.recount(this.#peers.values());
  }

  /** The shortest heartbeat interval a peer configured faster than us says it keeps (Infinity: none). */
  fastestTick(): number {
    return this.#peerTiming.fastestTick();
  }

  #join(lane: Lane<Peer>, hostname: string, peer: Peer): void {
    peer.lane = lane;
    lane.peers.set(hostname, peer);
  }

  #leave(hostname: string, peer: Peer): void {
    const lane = peer.lane;
    lane.peers.delete(hostname);
    if (lane.peers.size === 0 && lane !== this.#local) this.#lanes.delete(lane.key);
  }

  get size(): number {
    return this.#peers.size;
  }

  get(hostname: string): Peer | undefined {
    return this.#peers.get(hostname);
  }

  /** Peers in the order they joined the table. */
  entries(): IterableIterator<[string, Peer]> {
    return this.#peers.entries();
  }

  values(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  hostnames(): IterableIterator<string> {
    return this.#peers.keys();
  }

  isLive(peer: Peer, now: Instant): boolean {
    return now.mono < peer.lastHeard + peer.lane.deadAfterMs;
  }

  /** A record changed: the application's view copies it again. */
  touch(hostname: string): void {
    this.#view.touch(hostname);
  }

  /** Hostnames changed (added, updated or removed) since the last call, or 'all'. */
  takeChanged(): Set<string> | 'all' {
    return this.#view.take();
  }

  /** A heartbeat from a hostname not in the table. */
  add(message: HeartbeatMessage, address: string, now: Instant): Peer {
    const record: ServerRecord = {
      hostname: message.hostname,
      ip: message.ip,
      master: message.master,
      eligible: message.eligible,
      self: false,
      now: now.wall / 1000,
      data: message.data,
      uptime: message.uptime,
      locked: false,
      priority: message.prio ?? 0,
      term: message.term ?? 0,
      health: healthOf(message.health),
    };
    const peer: Peer = {
      record,
      lastHeard: now.mono,
      iid: message.iid,
      pid: message.pid,
      seq: message.seq ?? -1,
      address,
      port: 0,
      iidSince: now.mono,
      heard: 1,
      other: null,
      duplicate: false,
      reportedAt: -Infinity,
      skipped: new SkippedSeqs(),
      ckpt: message.ckpt ?? null,
      lane: this.#local,
      tick: 0,
      timingNoted: { tick: 0, beats: 0, ourTick: 0, ourBeats: 0 },
    };
    this.#peers.set(message.hostname, peer);
    this.#earliest = -Infinity;
    this.#setMember(message.hostname, message.eligible);
    this.#join(this.#local, message.hostname, peer);
    this.#peerTiming.count(peer, message.tick ?? 0);
    this.#peerTiming.note(message.hostname, peer, message);
    this.claimants.note(message.hostname, peer, message.master);
    this.touch(message.hostname);
    return peer;
  }

  /** Make the record show `message` and follow its instance. */
  follow(peer: Peer, message: HeartbeatMessage, address: string, heardAt: number, now: Instant): void {
    const record = peer.record;
    record.ip = message.ip;
    record.master = message.master;
    if (record.eligible !== message.eligible) {
      this.#step.peerLog(5, `Server ${message.hostname} is ${message.eligible ? 'now' : 'no longer'} eligible`);
      this.#step.membersMayHaveChanged = true;
    }
    record.eligible = message.eligible;
    record.uptime = message.uptime;
    record.data = message.data;
    record.now = now.wall / 1000;
    record.priority = message.prio ?? 0;
    record.term = message.term ?? 0;
    record.health = healthOf(message.health);
    peer.ckpt = message.ckpt ?? null;
    const sameInstance = peer.iid === message.iid;
    if (sameInstance) this.noteSkipped(peer, message.seq ?? -1, now);
    else peer.skipped.clear();
    peer.iid = message.iid;
    peer.pid = message.pid;
    peer.seq = message.seq ?? -1;
    // Heard again after missing a heartbeat or more: the network between us may have just
    // healed (see Roles: with a quorum, nobody claims before asking who is there).
    if (peer.iid === message.iid && heardAt - peer.lastHeard > RETURN_AFTER_TICKS * peer.lane.tickMs) this.#step.peerReturned = true;
    // How late this heartbeat came against the interval its sender keeps, lost ones aside
    // (the gap rounded to whole intervals): the grace follows it (Timing).
    const interval = message.pace ?? message.tick;
    if (interval !== undefined && sameInstance && heardAt > peer.lastHeard) {
      const gap = heardAt - peer.lastHeard;
      const late = gap - Math.max(1, Math.round(gap / interval)) * interval;
      if (late > 0) this.#timing.notePeerLateness(late);
    }
    this.claimants.heard(message.hostname, peer, heardAt);
    peer.lastHeard = heardAt;
    peer.address = address;
    this.#leftLocked.delete(peer);
    this.#setMember(message.hostname, message.eligible);
    if (peer.lane !== this.#local && this.#peerTiming.keepsOurPace(message)) {
      // After a reload of our timing, it now sends at least as often as we do: judged by ours from now on.
      this.#leave(message.hostname, peer);
      this.#join(this.#local, message.hostname, peer);
    }
    this.#peerTiming.count(peer, message.tick ?? 0);
    this.#peerTiming.note(message.hostname, peer, message);
    this.#place(message.hostname, peer, now);
    this.claimants.note(message.hostname, peer, message.master);
    this.touch(message.hostname);
  }

  /** Record the seqs a packet numbered `seq` skipped over (it may have overtaken them). */
  noteSkipped(peer: Peer, seq: number, now: Instant): void {
    peer.skipped.note(peer.seq, seq, now.mono, now.mono + this.#timing.tockMs);
  }

  /** Keep the heard order after `peer.lastHeard` changed. */
  #place(hostname: string, peer: Peer, now: Instant): void {
    const lane = peer.lane;
    lane.peers.delete(hostname);
    if (peer.lastHeard >= now.mono) {
      lane.peers.set(hostname, peer);
      return;
    }
    // Heard earlier than now (following the other process of a duplicate, or a locked peer
    // that left): rare, so re-sort.
    this.#earliest = -Infinity;
    const byHeard = (a: [string, Peer], b: [string, Peer]): number => a[1].lastHeard - b[1].lastHeard;
    const sorted = [...lane.peers, [hostname, peer] as [string, Peer]].sort(byHeard);
    lane.peers.clear();
    for (const [name, member] of sorted) lane.peers.set(name, member);
  }

  /** A peer's claim to master ended (it left, or fell silent while locked). */
  clearClaim(hostname: string, peer: Peer): void {
    if (peer.record.master) this.touch(hostname);
    peer.record.master = false;
    this.claimants.note(hostname, peer, false);
  }

  /**
   * Show a peer's row as master or not, whatever it last said: a claim superseded by a newer
   * one shows false, and the master we follow true once that one is over.
   */
  showMaster(hostname: string, master: boolean): void {
    const peer = this.#peers.get(hostname);
    if (!peer || peer.record.master === master) return;
    this.claimants.show(hostname, peer, master);
    this.touch(hostname);
  }

  /** A locked peer left: dead at once, but kept; it holds no lease. */
  markLeft(hostname: string, peer: Peer, now: Instant): void {
    this.#step.membersMayHaveChanged = true;
    this.#leftLocked.add(peer);
    this.#relays.forget(hostname);
    this.#setMember(hostname, false);
    this.claimants.movedBack(hostname);
    peer.lastHeard = now.mono - peer.lane.deadAfterMs;
    this.#place(hostname, peer, now); // its deadline is now the oldest
  }

  /** A locked peer fell silent: kept, but no longer a member, and (having been noted once) no longer anyone's lease. */
  markSilent(hostname: string, peer: Peer): void {
    this.#leftLocked.add(peer);
    this.#setMember(hostname, false);
    this.#relays.forget(hostname);
  }

  /** Something other than a heartbeat may have made a silent peer removable: look again at the next `dead`. */
  recheck(): void {
    this.#earliest = -Infinity;
  }

  hasLeft(peer: Peer): boolean {
    return this.#leftLocked.has(peer);
  }

  remove(hostname: string, peer: Peer): void {
    this.#peers.delete(hostname);
    this.#setMember(hostname, false);
    this.#leave(hostname, peer);
    this.#peerTiming.forget(peer);
    this.claimants.removed(hostname);
    this.#relays.forget(hostname);
    this.#relays.removed(hostname, peer.lastHeard);
    this.touch(hostname);
    this.#step.event({ type: 'deleteserver', server: { ...peer.record } });
  }

  /** The unlocked peers past their deadline, and the locked ones before the first live one, oldest first. */
  dead(now: Instant): ReadonlyArray<[string, Peer]> {
    // Nothing has reached its deadline since the last look (deadlines only move later as
    // peers are heard): the common case, one comparison per packet.
    if (now.mono < this.#earliest) return NONE;
    let dead: Array<[string, Peer]> | null = null;
    let lanes = 0;
    for (const lane of this.#lanes.values()) {
      const deadAfter = lane.deadAfterMs;
      let found = false;
      for (const [hostname, peer] of lane.peers) {
        // The first live peer ends the scan: every peer after it was heard later.
        if (now.mono < peer.lastHeard + deadAfter) {
          if (peer.record.locked) continue; // a locked peer may sit anywhere: it is never moved when dead
          break;
        }
        (dead ??= []).push([hostname, peer]);
        found = true;
      }
      if (found) lanes++;
    }
    if (dead === null) return NONE;
    return lanes > 1 ? dead.sort((a, b) => a[1].lastHeard - b[1].lastHeard) : dead;
  }

  /** Peers whose record shows them as master now (what the application's `servers` shows). */
  shownMasters(): string[] {
    return this.claimants.shownMasters();
  }

  /** Live peers whose last heartbeat claims master (a new array: the caller may change it). */
  liveClaimants(now: Instant): string[] {
    return this.claimants.live(now);
  }

  /** Is `hostname` among `liveClaimants(now)`? */
  isLiveClaimant(hostname: string, now: Instant): boolean {
    return this.claimants.isLive(hostname, now);
  }

  /**
   * The next liveness deadline still ahead. Every entry point evaluates before flushing, so
   * a deadline already past belongs to a locked peer, which needs no further wake-up. In
   * each lane's heard order the first deadline still ahead is the lane's earliest.
   */
  nextDeadline(now: Instant): number {
    const next = this.#nextDeadline(now);
    this.#earliest = next;
    return next;
  }

  #nextDeadline(now: Instant): number {
    let next = Infinity;
    for (const lane of this.#lanes.values()) {
      const deadAfter = lane.deadAfterMs;
      for (const peer of lane.peers.values()) {
        const deadline = peer.lastHeard + deadAfter;
        if (deadline > now.mono) {
          if (deadline < next) next = deadline;
          break;
        }
      }
    }
    return next;
  }

  /** A shutdown notice from this instance of `hostname`: its packets sent before it are late copies. */
  noteDeparture(hostname: string, iid: string, seq: number | undefined, now: Instant): void {
    this.#departed.note(hostname, iid, seq, now);
  }

  /** Sent before its sender's shutdown notice, and arriving just after it. */
  sentBeforeDeparture(hostname: string, iid: string | undefined, seq: number | undefined, now: Instant): boolean {
    return this.#departed.sentBefore(hostname, iid, seq, now);
  }

  /** The application locks (or unlocks) a record: a locked server is never removed. */
  setLocked(hostname: string, locked: boolean): boolean {
    const peer = this.#peers.get(hostname);
    if (!peer || peer.record.locked === locked) return false;
    peer.record.locked = locked;
    this.#earliest = -Infinity;
    this.touch(hostname);
    return true;
  }
}
