/**
 * The member table: every peer we hear, its record, and when it dies.
 *
 * Peers are kept in the order we last heard them, oldest first: a heartbeat moves its peer
 * to the end (`place`). Every peer dies the same time after it was last heard, so the
 * unlocked dead peers are a prefix and the next deadline is that of the first live peer;
 * each packet then costs O(1) instead of a walk over the whole table (with 1000 servers
 * the walk cost every server O(N²) per tick). A locked peer whose shutdown notice makes it
 * dead at once is moved to the front, which keeps this true.
 *
 * Records here are the core's own. Applications read copies (the shell's `servers`
 * view); nothing an application writes there reaches this table, and locking a record is
 * an explicit input (`setLocked`).
 */
import type { Checkpoint, HeartbeatMessage } from '../protocol/messages';
import type { Instant, ServerRecord } from './types';
import { SkippedSeqs } from './skipped';
import type { Step } from './step';
import { DEADLINE_GRACE_TICKS, type Timing } from './timing';

export interface Peer {
  record: ServerRecord;
  /** Monotonic ms of the last heartbeat heard. */
  lastHeard: number;
  iid: string | undefined;
  /** Highest sequence number heard from this instance (-1: none, or an old server). */
  seq: number;
  address: string;
  /** Monotonic ms when `iid` became the instance we follow for this hostname. */
  iidSince: number;
  /** Heartbeats heard from `iid`. */
  heard: number;
  /** The instance we followed before (a restart), or the other live process (a duplicate). */
  other: OtherInstance | null;
  /** Both instances are live: a duplicate hostname, and `other` is the one that yields. */
  duplicate: boolean;
  /** Monotonic ms of the last duplicate report for this hostname. */
  reportedAt: number;
  /** Seqs of the followed instance a newer packet skipped over, for a tock (see instances.ts). */
  skipped: SkippedSeqs;
  /** The checkpoint its last heartbeat carried: taken only if we follow it as master. */
  ckpt: Checkpoint | null;
  /** The timing it promises (its own tick and check_beats), by which it is judged. */
  lane: Lane;
}

/**
 * Peers that promise the same timing. Each is judged by its own promise, as VRRPv3 backups
 * learn the master's advertisement interval: a server configured with a slower heartbeat
 * is not removed between two of its heartbeats. A peer that does not say (the original)
 * is judged by our own config (the local lane). Within a lane every peer dies the same
 * time after it was last heard, so heard order is deadline order.
 */
export class Lane {
  readonly peers = new Map<string, Peer>();
  constructor(
    readonly key: string,
    readonly timing: { readonly tickMs: number; readonly checkBeats: number },
  ) {}

  get tickMs(): number {
    return this.timing.tickMs;
  }
  get tockMs(): number {
    return this.timing.tickMs * this.timing.checkBeats;
  }
  /** Silent this long, a peer of this lane is dead: its tock plus a quarter tick. */
  get deadAfterMs(): number {
    return this.timing.tickMs * (this.timing.checkBeats + DEADLINE_GRACE_TICKS);
  }
  /** A tock; with check_beats 1, a quarter tick more (see Timing.quorumWindowMs). */
  get quorumWindowMs(): number {
    return Math.max(this.tockMs, (1 + DEADLINE_GRACE_TICKS) * this.timing.tickMs);
  }
}

export interface OtherInstance {
  iid: string | undefined;
  seq: number;
  address: string;
  lastHeard: number;
  heard: number;
  /** Its last heartbeat: what the record becomes if it takes the name over. */
  heartbeat: HeartbeatMessage | null;
}

export class MemberTable {
  readonly #timing: Timing;
  readonly #step: Step;
  #peers = new Map<string, Peer>();
  /** Peers whose last heartbeat claimed master (live or not): the candidates for `liveClaimants`. */
  #claiming = new Set<string>();
  /** Locked peers kept after their shutdown notice: they left (not master), so they hold no lease. */
  #leftLocked = new WeakSet<Peer>();
  /** Hostnames whose record changed since the last `takeChanged` (for the application's view). */
  #changed = new Set<string>();
  #allChanged = false;
  /** Lanes by the timing their peers promise; 'local' for peers that promise none. */
  #lanes = new Map<string, Lane>();
  readonly #local: Lane;
  /**
   * hostname → instance and sequence number of the last shutdown notice heard, even for a
   * server not (or no longer) in the table. A packet that instance sent before the notice
   * can arrive after it (reordering); it must not bring the server back as a ghost master
   * for a tock. A later sequence number means the instance lives on. Only for the answer
   * holdoff after the notice, as for a restart's overtaken packets: without a secret a
   * notice can be forged, and must not silence the real server for longer.
   */
  #departed = new Map<string, { iid: string; seq: number; until: number }>();
  readonly #maxDeparted: number;

  constructor(timing: Timing, step: Step, maxDeparted: number) {
    this.#timing = timing;
    this.#step = step;
    this.#maxDeparted = maxDeparted;
    this.#local = new Lane('local', timing);
    this.#lanes.set('local', this.#local);
  }

  /** The lane for the timing a heartbeat promises; noted (once per change) when it differs from ours. */
  #laneOf(message: HeartbeatMessage): Lane {
    if (message.tick === undefined || message.beats === undefined) return this.#local;
    const key = `${message.tick}/${message.beats}`;
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = new Lane(key, { tickMs: message.tick, checkBeats: message.beats });
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  #join(lane: Lane, hostname: string, peer: Peer): void {
    peer.lane = lane;
    lane.peers.set(hostname, peer);
  }

  #leave(hostname: string, peer: Peer): void {
    const lane = peer.lane;
    lane.peers.delete(hostname);
    if (lane.peers.size === 0 && lane !== this.#local) this.#lanes.delete(lane.key);
  }

  /** Say once (per change) that a peer keeps another timing than ours, and how it is judged. */
  #noteTiming(hostname: string, lane: Lane, previous: Lane | null): void {
    if (lane === previous || lane === this.#local) return;
    const ours = this.#timing;
    if (lane.tickMs === ours.tickMs && lane.timing.checkBeats === ours.checkBeats) return;
    this.#step.peerLog(
      3,
      `Server ${hostname} sends a heartbeat every ${lane.tickMs} ms (check_beats ${lane.timing.checkBeats}) while this server is configured for ${ours.tickMs} ms (check_beats ${ours.checkBeats}); ` +
        `judging it by its own timing: dead after ${Math.round(lane.deadAfterMs)} ms of silence. Give every server the same heartbeat_freq and check_beats.`,
    );
  }

  get size(): number {
    return this.#peers.size;
  }

  get(hostname: string): Peer | undefined {
    return this.#peers.get(hostname);
  }

  /** Peers in heard order, oldest first. */
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
    if (this.#allChanged) return;
    this.#changed.add(hostname);
    // A flood of forged hostnames between two reads of the view must not grow this set
    // without bound: past the table's own bound, the view is rebuilt instead.
    if (this.#changed.size > this.#maxDeparted + 64) {
      this.#allChanged = true;
      this.#changed.clear();
    }
  }

  /** Hostnames changed (added, updated or removed) since the last call, or 'all'. */
  takeChanged(): Set<string> | 'all' {
    if (this.#allChanged) {
      this.#allChanged = false;
      return 'all';
    }
    const changed = this.#changed;
    this.#changed = new Set();
    return changed;
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
    };
    const peer: Peer = {
      record,
      lastHeard: now.mono,
      iid: message.iid,
      seq: message.seq ?? -1,
      address,
      iidSince: now.mono,
      heard: 1,
      other: null,
      duplicate: false,
      reportedAt: -Infinity,
      skipped: new SkippedSeqs(),
      ckpt: message.ckpt ?? null,
      lane: this.#local,
    };
    this.#peers.set(message.hostname, peer);
    const lane = this.#laneOf(message);
    this.#join(lane, message.hostname, peer);
    this.#noteTiming(message.hostname, lane, null);
    this.noteClaim(message.hostname, message.master);
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
    peer.ckpt = message.ckpt ?? null;
    if (peer.iid === message.iid) this.noteSkipped(peer, message.seq ?? -1, now);
    else peer.skipped.clear();
    peer.iid = message.iid;
    peer.seq = message.seq ?? -1;
    peer.lastHeard = heardAt;
    peer.address = address;
    this.#leftLocked.delete(peer);
    const lane = this.#laneOf(message);
    if (lane !== peer.lane) {
      const previous = peer.lane;
      this.#leave(message.hostname, peer);
      this.#join(lane, message.hostname, peer);
      this.#noteTiming(message.hostname, lane, previous);
    }
    this.#place(message.hostname, peer, now);
    this.noteClaim(message.hostname, message.master);
    this.touch(message.hostname);
  }

  /** Record the seqs a packet numbered `seq` skipped over (it may have overtaken them). */
  noteSkipped(peer: Peer, seq: number, now: Instant): void {
    peer.skipped.note(peer.seq, seq, now.mono, now.mono + this.#timing.tockMs);
  }

  /** Keep the heard order after `peer.lastHeard` changed. */
  #place(hostname: string, peer: Peer, now: Instant): void {
    const lane = peer.lane;
    this.#peers.delete(hostname);
    lane.peers.delete(hostname);
    if (peer.lastHeard >= now.mono) {
      this.#peers.set(hostname, peer);
      lane.peers.set(hostname, peer);
      return;
    }
    // Heard earlier than now (following the other process of a duplicate, or a locked peer
    // that left): rare, so re-sort.
    const byHeard = (a: [string, Peer], b: [string, Peer]): number => a[1].lastHeard - b[1].lastHeard;
    this.#peers = new Map([...this.#peers, [hostname, peer] as [string, Peer]].sort(byHeard));
    const sorted = [...lane.peers, [hostname, peer] as [string, Peer]].sort(byHeard);
    lane.peers.clear();
    for (const [name, member] of sorted) lane.peers.set(name, member);
  }

  noteClaim(hostname: string, master: boolean): void {
    if (master) this.#claiming.add(hostname);
    else this.#claiming.delete(hostname);
  }

  /** A peer's claim to master ended (it left, or fell silent while locked). */
  clearClaim(hostname: string, peer: Peer): void {
    if (peer.record.master) this.touch(hostname);
    peer.record.master = false;
    this.noteClaim(hostname, false);
  }

  /** A locked peer left: dead at once, but kept; it holds no lease. */
  markLeft(hostname: string, peer: Peer, now: Instant): void {
    this.#step.membersMayHaveChanged = true;
    this.#leftLocked.add(peer);
    peer.lastHeard = now.mono - peer.lane.deadAfterMs;
    this.#place(hostname, peer, now); // its deadline is now the oldest
  }

  /** A locked peer fell silent: kept, but no longer a member, and (having been noted once) no longer anyone's lease. */
  markSilent(peer: Peer): void {
    this.#leftLocked.add(peer);
  }

  hasLeft(peer: Peer): boolean {
    return this.#leftLocked.has(peer);
  }

  remove(hostname: string, peer: Peer): void {
    this.#peers.delete(hostname);
    this.#leave(hostname, peer);
    this.#claiming.delete(hostname);
    this.touch(hostname);
    this.#step.event({ type: 'deleteserver', server: { ...peer.record } });
  }

  /** The unlocked peers past their deadline, and the locked ones before the first live one, oldest first. */
  dead(now: Instant): Array<[string, Peer]> {
    let dead: Array<[string, Peer]> = [];
    let lanes = 0;
    for (const lane of this.#lanes.values()) {
      const deadAfter = lane.deadAfterMs;
      const before = dead.length;
      for (const [hostname, peer] of lane.peers) {
        // The first live peer ends the scan: every peer after it was heard later.
        if (now.mono < peer.lastHeard + deadAfter) {
          if (peer.record.locked) continue; // a locked peer may sit anywhere: it is never moved when dead
          break;
        }
        dead.push([hostname, peer]);
      }
      if (dead.length > before) lanes++;
    }
    if (lanes > 1) dead = dead.sort((a, b) => a[1].lastHeard - b[1].lastHeard);
    return dead;
  }

  /** Live peers whose last heartbeat claims master. */
  liveClaimants(now: Instant): string[] {
    const claimants: string[] = [];
    for (const hostname of this.#claiming) {
      const peer = this.#peers.get(hostname);
      if (peer && this.isLive(peer, now)) claimants.push(hostname);
    }
    return claimants;
  }

  /**
   * The next liveness deadline still ahead. Every entry point evaluates before flushing, so
   * a deadline already past belongs to a locked peer, which needs no further wake-up. In
   * each lane's heard order the first deadline still ahead is the lane's earliest.
   */
  nextDeadline(now: Instant): number {
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
    this.#departed.delete(hostname);
    this.#departed.set(hostname, { iid, seq: seq ?? Infinity, until: now.mono + this.#timing.holdoffMs });
    // Bounded like the table: forget the oldest departures first.
    if (this.#departed.size > this.#maxDeparted) this.#departed.delete(this.#departed.keys().next().value as string);
  }

  /** Sent before its sender's shutdown notice, and arriving just after it. */
  sentBeforeDeparture(hostname: string, iid: string | undefined, seq: number | undefined, now: Instant): boolean {
    const departed = this.#departed.get(hostname);
    return departed !== undefined && iid === departed.iid && (seq ?? -1) < departed.seq && now.mono < departed.until;
  }

  /** The application locks (or unlocks) a record: a locked server is never removed. */
  setLocked(hostname: string, locked: boolean): boolean {
    const peer = this.#peers.get(hostname);
    if (!peer || peer.record.locked === locked) return false;
    peer.record.locked = locked;
    this.touch(hostname);
    return true;
  }
}

/** What the record of a followed instance becomes if the other instance takes the name over. */
export function snapshot(peer: Peer): OtherInstance {
  const { record } = peer;
  return {
    iid: peer.iid,
    seq: peer.seq,
    address: peer.address,
    lastHeard: peer.lastHeard,
    heard: peer.heard,
    heartbeat: {
      action: 'heartbeat',
      hostname: record.hostname,
      ip: record.ip,
      master: record.master,
      eligible: record.eligible,
      uptime: record.uptime,
      data: record.data,
      prio: record.priority,
      term: record.term,
    },
  };
}
