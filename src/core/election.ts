/**
 * The election core: a pure state machine.
 *
 * Inputs are "a message arrived" (`receive`) and "time is now T" (`tick`), plus a few
 * commands (`start`, `shutdown`, `setEligible`, `setTiming`). Every call returns an
 * `Output`: messages to send, events to emit, log lines, and when to be woken next.
 * There are no sockets, timers or clock reads in here; the caller passes time in, so
 * tests and the simulator can drive thousands of servers deterministically.
 *
 * The rules, in one place (`#evaluate`):
 *  - a peer is live while its last heartbeat is younger than one tock (plus a quarter
 *    tick of grace); an unlocked peer that is not live is removed at that instant
 *    (a per-peer deadline, not a periodic sweep);
 *  - exactly one live claimant of `master` (self included) is the master;
 *  - with no claimant, the live eligible server whose hostname sorts first claims, once it
 *    has listened for a tock after starting (or has seen a master, which proves it is in
 *    contact with the cluster) — so a joiner never takes over a working cluster;
 *  - two masters (after a partition heals, say): the one that ranks later relinquishes
 *    (or exits, with exit_on_conflict); the one that ranks first keeps the role, raises
 *    its term above the rival's and re-announces at once, so the app on the winner sees
 *    no needless slave/master flap and the fencing token still only grows;
 *  - "ranks first" = higher priority, then the hostname that sorts first (plain string
 *    order, as the original); with equal priorities this is exactly the original's rule;
 *  - with a quorum set, no server stays master unless it sees that many eligible servers
 *    (itself included) heard within the last tock, and none becomes master unless it heard
 *    them within the last tick and a half, nor before a master that fell silent has had a
 *    tock + tick to step down on its side (a lease: the two never overlap);
 *  - slaves facing several claimants follow the one with the newest term, if one is;
 *  - every new master takes a term above every term it has seen (a fencing token);
 *  - a handoff (stepDown/promote) names its target in the departing master's heartbeats
 *    until it is done: the target claims at once and everyone else waits for it.
 *  - two live processes with one hostname (told apart by instance id): the one that claims
 *    master, else the one with the lower instance id, keeps the name; the other never claims
 *    and steps down, and every server that hears both follows the keeper only (`outranks`).
 *
 * In an authenticated cluster (`verifyInstances`) a message is acted on only when its
 * instance is known and its seq is new, or when it proves it is alive by echoing one of our
 * hellos (core/freshness.ts): a replayed packet changes nothing.
 */
import type { Address, AppMessage, Checkpoint, JsonValue, HeartbeatMessage, HelloMessage, JsonObject, Message } from '../protocol/messages';
import type { CoreEvent, Instant, LogLine, Outbound, Output, ServerRecord } from './types';
import { FreshnessGuard } from './freshness';
import { SkippedSeqs } from './skipped';

export interface CoreTiming {
  /** Milliseconds between heartbeats (one tick). */
  tickMs: number;
  /** Ticks per tock; a peer silent for a tock is dead. */
  checkBeats: number;
}

export interface CoreOptions extends CoreTiming {
  hostname: string;
  ip: string;
  /** Random per process (hex); see HeartbeatMessage.iid. */
  instanceId: string;
  eligible?: boolean;
  data?: JsonObject;
  exitOnConflict?: boolean;
  /** Most servers the table will hold; heartbeats from further new hostnames are dropped. */
  maxServers?: number;
  /** Higher wins an election, then hostname order. @default 0 */
  priority?: number;
  /** Eligible servers (self included) that must be visible for anyone to be master. 0: off. */
  quorum?: number;
  /** Namespace: packets of other clusters on the same port are ignored. '': the default cluster. */
  clusterId?: string;
  /**
   * Authenticated cluster (a secret is configured): every message carries iid and seq, and a
   * new instance is admitted only once it has echoed one of our hellos. Off: the original's
   * open protocol, where any well-formed packet is believed.
   */
  verifyInstances?: boolean;
}

type Role = 'none' | 'slave' | 'master';

interface Peer {
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
  /** Seqs of the followed instance a newer packet skipped over, for a tock (see #lateCommand). */
  skipped: SkippedSeqs;
}

interface OtherInstance {
  iid: string | undefined;
  seq: number;
  address: string;
  lastHeard: number;
  heard: number;
  /** Its last heartbeat: what the record becomes if it takes the name over. */
  heartbeat: HeartbeatMessage | null;
}

/** Another live process that announces our own hostname. */
interface Namesake {
  iid: string;
  address: string;
  master: boolean;
  lastHeard: number;
  /** Packets heard from it in a row. */
  heard: number;
}

/**
 * Without a secret anyone can send a packet under any name, so the duplicate rules (new in
 * this package) act only on a process heard at least this often: they must not let one
 * forged packet do more than it could before them.
 */
const OPEN_DUPLICATE_EVIDENCE = 2;

const DEFAULT_MAX_SERVERS = 1000;
/**
 * After a stall (our own timer fired more than a tick late) decisions wait this long, so
 * the datagrams queued during the stall are read before any peer is judged dead. In Node
 * the I/O phase runs before the next timer, so one millisecond is enough.
 */
const STALL_DRAIN_MS = 1;
/**
 * A peer is dead a quarter tick after its tock runs out. Without it, losing
 * check_beats - 1 heartbeats in a row would put the next one exactly on the deadline and
 * a little timer lateness would remove a live server; VRRP adds a "skew time" for the
 * same reason. Failover stays well inside tock + tick.
 */
export const DEADLINE_GRACE_TICKS = 0.25;

/** Answers to `hello` are coalesced within this window so a flood of hellos cannot make us flood. */
const MAX_ANSWER_HOLDOFF_MS = 250;

export class ElectionCore {
  readonly hostname: string;
  readonly instanceId: string;

  /** hostname → record, self included; prototype-free so any hostname is a harmless key. */
  readonly table: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;

  #ip: string;
  #tickMs: number;
  #checkBeats: number;
  #exitOnConflict: boolean;
  #maxServers: number;
  #priority: number;
  #quorum: number;
  #clusterId: string;
  /** The fencing token: the highest term we have seen or held. */
  #term = 0;
  /** A handoff in progress: nobody but `target` claims until it does or `until` passes. */
  #handoff: { target: string; until: number; stepDown: boolean } | null = null;
  /** promote() waiting for the master to hand over. */
  #promoteUntil = Infinity;
  /** The wake-up time we last asked for; being called much later than that means we stalled. */
  #requestedWake = Infinity;
  #drainUntil = -Infinity;
  /** The newest checkpoint we know, published by us or heard from a master. */
  #checkpoint: Checkpoint | null = null;
  /** The live eligible set last reported in a `members` event (joined), to report only changes. */
  #lastMembers = '';
  #reportMembersSoon = false;
  #lastHeartbeatAt = -Infinity;

  #self: ServerRecord;
  /**
   * Peers in the order we last heard them, oldest first: a heartbeat moves its peer to the
   * end (#place). Every peer dies the same time after it was last heard, so the unlocked
   * dead peers are a prefix and the next deadline is that of the first live peer; each
   * packet then costs O(1) instead of a walk over the whole table. (The simulator found the
   * walk: with 1000 servers every one of them spent O(N²) per tick on it.) A locked peer
   * whose shutdown notice makes it dead at once is moved to the front, which keeps this true.
   */
  #peers = new Map<string, Peer>();
  /** Peers whose last heartbeat claimed master (live or not): the candidates for `claimants`. */
  #claiming = new Set<string>();
  /**
   * hostname → instance and sequence number of the last shutdown notice heard, even for a
   * server not (or no longer) in the table. A packet that instance sent before the notice
   * can arrive after it (reordering); it must not bring the server back as a ghost master
   * for a tock (found by the simulator: seed 328, and a shrunk property-test case where
   * the notice came first). A later sequence number means the instance lives on. Only for
   * the answer holdoff after the notice, as for a restart's overtaken packets: without a
   * secret a notice can be forged, and must not silence the real server for longer.
   */
  #departed = new Map<string, { iid: string; seq: number; until: number }>();
  #role: Role = 'none';
  #masterHostname = '';
  #started = false;
  #stopped = false;
  /** Set when exit_on_conflict fired: we wait for the shell to shut us down, deciding nothing. */
  #exiting = false;
  #startedAt = 0;
  /** When we may claim at the earliest, unless a master is heard first: a tock after start, half a tick after quorum comes back. */
  #listenUntil = 0;
  /** With a quorum: we have been below it, so we are out of touch with the cluster. */
  #belowQuorum = false;
  /**
   * With a quorum: when we last heard a master that then fell silent. Cut off from us, it
   * may stay master on its side until a tock after its last heartbeat from our side, which
   * was at most a tick after this; we claim no earlier (see #mayClaim).
   */
  #silentMasterHeardAt = -Infinity;
  /** Locked peers kept after their shutdown notice: they left (not master), so they hold no lease. */
  #leftLocked = new WeakSet<Peer>();
  /** True once we may claim: a tock of listening has passed, or we have seen a master. */
  #settled = false;
  #nextHeartbeatAt = Infinity;
  #lastAnswerAt = -Infinity;
  #answerDueAt = Infinity;
  #lastFullLogAt = -Infinity;
  #lastDuplicateLogAt = -Infinity;
  /** Authenticated clusters only: instance admission and our challenges (see freshness.ts). */
  #guard: FreshnessGuard | null;
  #namesake: Namesake | null = null;

  #out: Output = emptyOutput();
  #seq = 0;

  constructor(options: CoreOptions) {
    this.hostname = options.hostname;
    this.instanceId = options.instanceId;
    this.#ip = options.ip;
    this.#tickMs = options.tickMs;
    this.#checkBeats = options.checkBeats;
    this.#exitOnConflict = options.exitOnConflict ?? false;
    this.#maxServers = options.maxServers ?? DEFAULT_MAX_SERVERS;
    this.#priority = options.priority ?? 0;
    this.#quorum = options.quorum ?? 0;
    this.#clusterId = options.clusterId ?? '';
    // Room for every server twice over (restarts, duplicates) before the least recently
    // heard instance is forgotten; a forgotten live instance simply proves itself again.
    this.#guard = options.verifyInstances ? new FreshnessGuard({ selfIid: this.instanceId, capacity: 2 * this.#maxServers + 64 }) : null;
    this.#self = {
      hostname: options.hostname,
      ip: options.ip,
      master: false,
      eligible: options.eligible ?? true,
      self: true,
      now: 0,
      data: options.data ?? {},
      uptime: 0,
      locked: false,
      priority: this.#priority,
      term: 0,
    };
    this.table[this.hostname] = this.#self;
  }

  // ---- read-only state -------------------------------------------------------------

  get master(): boolean {
    return this.#role === 'master';
  }
  get slave(): boolean {
    return this.#role === 'slave';
  }
  get masterHostname(): string {
    return this.#masterHostname;
  }
  get eligible(): boolean {
    return this.#self.eligible;
  }
  /** The fencing token: raised by every change of master; stamp writes with it. */
  get term(): number {
    return this.#term;
  }
  get priority(): number {
    return this.#priority;
  }
  /** The newest checkpoint known here (published by the master), or null. */
  get checkpoint(): JsonValue | null {
    return this.#checkpoint?.d ?? null;
  }

  /**
   * Live eligible servers (self included when eligible), sorted: the set that work split by
   * key is assigned over. Every server computes the same set once the cluster is stable.
   */
  eligibleMembers(now: Instant): string[] {
    const members = this.#self.eligible ? [this.hostname] : [];
    for (const [hostname, peer] of this.#peers) {
      if (peer.record.eligible && this.#isLive(peer, now)) members.push(hostname);
    }
    return members.sort();
  }
  get data(): JsonObject {
    return this.#self.data;
  }
  get stopped(): boolean {
    return this.#stopped;
  }
  get tickMs(): number {
    return this.#tickMs;
  }
  get tockMs(): number {
    return this.#tickMs * this.#checkBeats;
  }
  /** How long a peer may be silent and still be live: one tock plus the grace. */
  get deadAfterMs(): number {
    return this.#tickMs * (this.#checkBeats + DEADLINE_GRACE_TICKS);
  }
  /** Number of servers in the table, self included. */
  get size(): number {
    return this.#peers.size + 1;
  }
  /** Monotonic ms of the last heartbeat heard from `hostname`, or undefined. */
  lastHeard(hostname: string): number | undefined {
    return this.#peers.get(hostname)?.lastHeard;
  }
  /** Instance id of the process we follow for `hostname` (ours for our own). */
  instanceOf(hostname: string): string | undefined {
    return hostname === this.hostname ? this.instanceId : this.#peers.get(hostname)?.iid;
  }
  /** Another live process announces our hostname and keeps it: we never claim master. */
  yieldsHostname(now: Instant): boolean {
    return this.#yieldsName(now);
  }
  /** Instances the freshness guard remembers (authenticated clusters; 0 otherwise). */
  get knownInstances(): number {
    return this.#guard?.size ?? 0;
  }

  // ---- inputs ----------------------------------------------------------------------

  /** Begin: ask who is there, announce ourselves, and start listening for a tock. */
  start(now: Instant): Output {
    if (this.#started) return this.#flush(now);
    this.#started = true;
    this.#startedAt = now.mono;
    this.#listenUntil = now.mono + this.tockMs;
    this.#reportMembersSoon = true; // the first member set: ourselves
    this.#self.now = now.wall / 1000;
    this.#askWhoIsThere(now);
    this.#sendHeartbeat(now);
    this.#nextHeartbeatAt = now.mono + this.#tickMs;
    this.#log(4, `Listening for the cluster for ${this.tockMs} ms before any claim to master`);
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** A validated message arrived from `from`. */
  receive(message: Message, from: Address, now: Instant): Output {
    if (!this.#active) return this.#flush(now);
    if ((message.cid ?? '') !== this.#clusterId) {
      this.#log(10, `Ignoring ${message.action} from ${message.hostname}: cluster "${message.cid ?? ''}" is not ours`);
      return this.#flush(now);
    }
    this.#checkStall(now);
    // Broadcast loops back to our own socket; that echo carries our instance id.
    if (message.iid === this.instanceId) return this.#flush(now);
    if (this.#guard) {
      // The codec refuses such packets when authenticated; a direct caller gets the same rule.
      if (message.iid === undefined || message.seq === undefined) {
        this.#out.dropped = 'unverified';
        return this.#flush(now);
      }
      const verdict = this.#guard.admit(message, now.mono, this.#challengeTtlMs);
      if (verdict !== 'ok') {
        this.#refuse(message, from, now, verdict);
        return this.#flush(now);
      }
    }
    if (message.hostname === this.hostname) {
      // A namesake's challenge needs our answer too: that is how it learns of us.
      if (message.action === 'hello') this.#answerHello(message, from, now);
      this.#receiveOwnHostname(message, from, now);
    } else {
      this.#receiveFromPeer(message, from, now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  #receiveFromPeer(message: Message, from: Address, now: Instant): void {
    const departed = this.#departed.get(message.hostname);
    if (departed && message.iid === departed.iid && (message.seq ?? -1) < departed.seq && now.mono < departed.until) {
      this.#log(9, `Ignoring a late ${message.action} from ${message.hostname}, which has shut down`);
      this.#out.dropped = 'stale';
      return;
    }
    const peer = this.#peers.get(message.hostname);
    // A hello carries no state, only a question, so it is never stale: a starting server
    // sends it together with its first heartbeat, and when that heartbeat overtakes it the
    // hello must still be answered, or the joiner learns the master a tick late (SPEC 4.3;
    // found by the simulator, seed 29).
    if (peer && message.action !== 'hello' && this.#isStale(peer, message) && !this.#lateCommand(peer, message, now)) {
      this.#log(9, `Ignoring a stale ${message.action} from ${message.hostname} (overtaken by a newer packet)`);
      this.#out.dropped = 'stale';
      return;
    }
    switch (message.action) {
      case 'heartbeat':
        this.#receiveHeartbeat(message, from, now);
        break;
      case 'shutdown':
        this.#receiveShutdown(message, now);
        break;
      case 'hello':
        this.#answerHello(message, from, now);
        break;
      case 'promote':
        if (peer && (peer.iid === undefined || message.iid === peer.iid)) this.#receivePromote(message.hostname, message.target, now);
        break;
      case 'message':
        // Only from a server we hear, in its current instance: a stranger cannot talk to the app.
        if (!peer || !this.#isLive(peer, now) || (peer.iid !== undefined && message.iid !== peer.iid)) {
          this.#log(9, `Ignoring a message from ${message.hostname}: not a live member`);
          break;
        }
        if (message.iid !== undefined && (message.seq ?? -1) > peer.seq) {
          this.#noteSkipped(peer, message.seq ?? -1, now);
          peer.seq = message.seq ?? -1;
        }
        if (message.to !== '*' && message.to !== this.hostname) break;
        this.#event({
          type: 'message',
          from: message.hostname,
          to: message.to,
          messageType: message.type,
          payload: message.payload,
          ...(message.rid !== undefined ? { rid: message.rid } : {}),
          ...(message.re !== undefined ? { re: message.re } : {}),
        });
        break;
    }
  }

  /**
   * Authenticated cluster, message not admitted. A stale one (replayed or reordered) is
   * ignored. An unverified instance is asked to prove it is alive; its hello is still
   * answered, since that answer is how it learns and admits us.
   */
  #refuse(message: Message, from: Address, now: Instant, verdict: 'stale' | 'unverified'): void {
    this.#out.dropped = verdict;
    if (verdict === 'stale') {
      this.#log(9, `Ignoring a stale ${message.action} from ${message.hostname} (${from.address}): sequence ${message.seq} already seen`);
      return;
    }
    this.#log(9, `Ignoring ${message.action} from ${message.hostname} (${from.address}): instance not yet verified`);
    if (message.action === 'hello') this.#answerHello(message, from, now);
    const iid = message.iid as string;
    const guard = this.#guard as FreshnessGuard;
    if (!guard.shouldChallenge(iid, now.mono, this.#holdoffMs)) return;
    const seq = this.#nextSeq();
    this.#send(this.#stamp({ action: 'hello', hostname: this.hostname, iid: this.instanceId, seq, for: iid }));
    guard.issued(seq, iid, now.mono, this.#challengeTtlMs);
  }

  #answerHello(message: HelloMessage, from: Address, now: Instant): void {
    // A challenge addressed to another instance is theirs to answer.
    if (message.for !== undefined && message.for !== this.instanceId) return;
    if (this.#guard) this.#guard.answer(message.iid as string, message.seq as number);
    this.#log(9, `Hello from ${message.hostname} (${from.address}), answering`);
    this.#answerSoon(now);
  }

  /**
   * Send an application message to a hostname or '*' (every other server). Delivery is at
   * most once: UDP, no retries; duplicates and reordered copies are dropped by sequence.
   */
  sendMessage(to: string, messageType: string, payload: JsonValue, now: Instant, ids: { rid?: string; re?: string } = {}): Output {
    const message: AppMessage = { action: 'message', hostname: this.hostname, to, type: messageType, payload, iid: this.instanceId, seq: this.#nextSeq() };
    if (ids.rid !== undefined) message.rid = ids.rid;
    if (ids.re !== undefined) message.re = ids.re;
    if (this.#active) this.#send(this.#stamp(message));
    return this.#flush(now);
  }

  /**
   * Publish a checkpoint (master only): it rides on every heartbeat of ours from now on,
   * so every server holds it within a tick, and whoever is master next gets it with its
   * `master` event. Returns false when this server is not master.
   */
  setCheckpoint(data: JsonValue, now: Instant): Output | null {
    if (!this.#active || this.#role !== 'master') return null;
    const version = this.#checkpoint && this.#checkpoint.t === this.#term ? this.#checkpoint.v + 1 : 1;
    this.#checkpoint = { t: this.#term, v: version, d: data };
    this.#sendHeartbeat(now);
    return this.#flush(now);
  }

  /** Time passed; do whatever is due (heartbeat, deadlines, claims). */
  tick(now: Instant): Output {
    if (!this.#active) return this.#flush(now);
    this.#checkStall(now);
    this.#expireRequests(now);
    this.#evaluate(now);
    if (now.mono >= this.#answerDueAt) this.#answer(now);
    if (now.mono >= this.#nextHeartbeatAt) {
      // On a fixed grid, so late timers do not add up to fewer heartbeats than one a tick;
      // after a stall, start a new grid rather than send a burst.
      const due = this.#nextHeartbeatAt;
      this.#sendHeartbeat(now);
      this.#nextHeartbeatAt = due + this.#tickMs > now.mono ? due + this.#tickMs : now.mono + this.#tickMs;
    }
    return this.#flush(now);
  }

  /** Change our eligibility; broadcast it at once. A master made ineligible steps down. */
  setEligible(eligible: boolean, now: Instant): Output {
    if (this.#self.eligible === eligible) return this.#flush(now);
    this.#self.eligible = eligible;
    this.#reportMembersSoon = true;
    this.#log(4, `Eligibility changed: we are ${eligible ? 'now' : 'no longer'} eligible to be master`);
    if (!this.#active) return this.#flush(now);
    if (!eligible && this.#role === 'master') this.#relinquish('we are no longer eligible');
    this.#evaluate(now);
    this.#sendHeartbeat(now);
    return this.#flush(now);
  }

  /** Replace the user data object broadcast with our heartbeats. */
  setData(data: JsonObject): void {
    this.#self.data = data;
  }

  /** Apply new timings (config reload) without a restart. */
  setTiming(timing: CoreTiming, now: Instant): Output {
    this.#tickMs = timing.tickMs;
    this.#checkBeats = timing.checkBeats;
    this.#nextHeartbeatAt = Math.min(this.#nextHeartbeatAt, now.mono + this.#tickMs);
    if (this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  /** Apply reloaded election policy. A lower priority or higher quorum takes effect at once. */
  setPolicy(policy: { exitOnConflict: boolean; priority: number; quorum: number }, now: Instant): Output {
    this.#exitOnConflict = policy.exitOnConflict;
    this.#quorum = policy.quorum;
    if (policy.priority !== this.#priority) {
      this.#priority = policy.priority;
      this.#self.priority = policy.priority;
      if (this.#active) this.#sendHeartbeat(now);
    }
    if (this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  /**
   * Hand the master role to the next server in rank, in one round trip: our last
   * heartbeat as master names it, it claims at once with a higher term, and nobody else
   * claims meanwhile. The outcome arrives as a `stepdown` event.
   */
  stepDown(now: Instant): Output {
    if (!this.#active || this.#role !== 'master') {
      this.#event({ type: 'stepdown', ok: false, hostname: '', reason: 'this server is not master' });
      return this.#flush(now);
    }
    const target = this.#bestPeer(now);
    if (!target) {
      this.#event({ type: 'stepdown', ok: false, hostname: '', reason: 'no other eligible server to hand off to' });
      return this.#flush(now);
    }
    this.#handOff(target, now);
    return this.#flush(now);
  }

  /**
   * Ask to become master. With a master in place, it is asked to hand off to us (one round
   * trip); with none, we claim at once. The outcome arrives as a `promote` event.
   */
  promote(now: Instant): Output {
    const fail = (reason: string): Output => {
      this.#event({ type: 'promote', ok: false, reason });
      return this.#flush(now);
    };
    if (!this.#active) return fail('this server is not running');
    if (this.#role === 'master') {
      this.#event({ type: 'promote', ok: true, reason: 'already master' });
      return this.#flush(now);
    }
    if (!this.#self.eligible) return fail('this server is not eligible');
    if (!this.#hasQuorum(now, true)) return fail(`no quorum: fewer than ${this.#quorum} eligible servers visible`);
    const master = this.#masterHostname;
    this.#promoteUntil = now.mono + this.tockMs;
    if (master && master !== this.hostname) {
      this.#log(4, `Asking ${master} to hand the master role to us`);
      this.#send(this.#stamp({ action: 'promote', hostname: this.hostname, target: master, iid: this.instanceId, seq: this.#nextSeq() }));
    } else {
      this.#log(4, 'Promoted with no master in place: claiming now');
      this.#handoff = null;
      this.#settled = true;
      this.#becomeMaster(now);
    }
    return this.#flush(now);
  }

  /** Leave gracefully: tell the cluster, so the survivors elect without waiting a tock. */
  shutdown(now: Instant): Output {
    if (this.#stopped) return this.#flush(now);
    this.#stopped = true;
    if (this.#started) {
      this.#send(this.#stamp({ action: 'shutdown', hostname: this.hostname, iid: this.instanceId, seq: this.#nextSeq() }));
      this.#log(4, 'Sent shutdown notice to the cluster');
    }
    this.#role = 'none';
    this.#self.master = false;
    return this.#flush(now);
  }

  get #active(): boolean {
    return this.#started && !this.#stopped && !this.#exiting;
  }

  // ---- message handlers ------------------------------------------------------------

  /**
   * Another process with our hostname (its packets never touch the table). Without a
   * secret, packets in the first moments after our start may be our previous process's
   * last ones, still in flight; authenticated, an admitted instance is alive by proof.
   */
  #receiveOwnHostname(message: Message, from: Address, now: Instant): void {
    if (!this.#guard && now.mono - this.#startedAt < this.#holdoffMs) return;
    const iid = message.iid ?? '';
    const known = this.#namesake?.iid === iid && now.mono - this.#namesake.lastHeard < this.deadAfterMs ? this.#namesake : null;
    if (message.action === 'shutdown') {
      if (known) this.#namesake = null;
      return;
    }
    const master = message.action === 'heartbeat' ? message.master : (known?.master ?? false);
    this.#namesake = { iid, address: from.address, master, lastHeard: now.mono, heard: (known?.heard ?? 0) + 1 };
    if (!this.#confirmed(this.#namesake) || now.mono - this.#lastDuplicateLogAt < this.tockMs) return;
    this.#lastDuplicateLogAt = now.mono;
    const ours = { iid: this.instanceId, address: this.#ip || 'this server' };
    const theirs = { iid, address: from.address };
    const weYield = outranks(master, iid, this.#role === 'master', this.instanceId);
    this.#reportDuplicate(this.hostname, weYield ? theirs : ours, weYield ? ours : theirs, true);
  }

  #reportDuplicate(hostname: string, keeper: { iid: string; address: string }, yielder: { iid: string; address: string }, self: boolean): void {
    const name = (side: { iid: string; address: string }): string => `${side.address} (instance ${side.iid || 'without id'})`;
    this.#log(1, `DUPLICATE HOSTNAME: two live processes announce ${hostname}: ${name(keeper)} keeps the name, ${name(yielder)} never claims master until it stops`);
    this.#event({ type: 'duplicate', hostname, keeper, yielder, self });
  }

  /** Another live process with our hostname outranks us: we neither claim nor keep master. */
  #yieldsName(now: Instant): boolean {
    const namesake = this.#namesake;
    if (!namesake || now.mono - namesake.lastHeard >= this.deadAfterMs) return false;
    return this.#confirmed(namesake) && outranks(namesake.master, namesake.iid, this.#role === 'master', this.instanceId);
  }

  /** Forget the other process with our hostname once it has been silent for a tock. */
  #expireNamesake(now: Instant): void {
    const namesake = this.#namesake;
    if (!namesake || now.mono - namesake.lastHeard < this.deadAfterMs) return;
    this.#namesake = null;
    if (this.#confirmed(namesake)) this.#log(4, `The other process named ${this.hostname} (${namesake.address}) is gone`);
  }

  /** Is a second process real? Authenticated, an admitted instance is alive by proof; without a secret, evidence must repeat. */
  #confirmed(instance: { heard: number }): boolean {
    return this.#guard !== null || instance.heard >= OPEN_DUPLICATE_EVIDENCE;
  }

  /** Record the seqs a packet numbered `seq` skipped over (it may have overtaken them). */
  #noteSkipped(peer: Peer, seq: number, now: Instant): void {
    peer.skipped.note(peer.seq, seq, now.mono, now.mono + this.tockMs);
  }

  /**
   * A promote or an application message older than the newest packet of its instance, but
   * one we skipped over and have not seen: the heartbeat sent after it overtook it (found by
   * the simulator: a promote() request dropped as stale, so the master never handed over).
   * Acted on once; a replay of it, or of anything seen before, is still stale.
   */
  #lateCommand(peer: Peer, message: Message, now: Instant): boolean {
    if ((message.action !== 'promote' && message.action !== 'message') || message.iid !== peer.iid || message.seq === undefined) return false;
    if (!peer.skipped.take(message.seq, now.mono)) return false;
    this.#log(9, `Accepting a late ${message.action} from ${message.hostname} (overtaken by a newer packet, not seen before)`);
    return true;
  }

  /** Same instance, sequence not above the last one heard: reordered or repeated. */
  #isStale(peer: Peer, message: Message): boolean {
    if (message.iid === undefined || message.seq === undefined) return false;
    if (message.iid === peer.iid) return message.seq <= peer.seq;
    return message.iid === peer.other?.iid && message.seq <= peer.other.seq;
  }

  #receiveHeartbeat(message: HeartbeatMessage, from: Address, now: Instant): void {
    const existing = this.#peers.get(message.hostname);
    if (existing) {
      if (existing.iid !== message.iid && !this.#switchInstance(existing, message, from, now)) return;
      this.#follow(existing, message, from.address, now.mono, now);
      existing.heard++;
      this.#log(10, `Heartbeat from ${message.hostname}`, existing.record);
      this.#noteHeartbeat(message, now);
      return;
    }
    if (this.#peers.size + 1 >= this.#maxServers) {
      this.#out.dropped = 'table-full';
      if (now.mono - this.#lastFullLogAt >= this.tockMs) {
        this.#lastFullLogAt = now.mono;
        this.#log(2, `Server table is full (${this.#maxServers}); ignoring new server ${message.hostname} from ${from.address}`);
      }
      return;
    }
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
    this.#peers.set(message.hostname, {
      record,
      lastHeard: now.mono,
      iid: message.iid,
      seq: message.seq ?? -1,
      address: from.address,
      iidSince: now.mono,
      heard: 1,
      other: null,
      duplicate: false,
      reportedAt: -Infinity,
      skipped: new SkippedSeqs(),
    });
    this.#noteClaim(message.hostname, message.master);
    this.table[message.hostname] = record;
    this.#log(5, `Server joined the cluster: ${message.hostname} (${message.ip})`);
    this.#event({ type: 'addserver', server: record });
    this.#noteHeartbeat(message, now);
  }

  /** Terms only grow; a departing master's handoff tells everyone who claims next. */
  #noteHeartbeat(message: HeartbeatMessage, now: Instant): void {
    if (message.term !== undefined && message.term > this.#term) this.#term = message.term;
    const ckpt = message.ckpt;
    if (ckpt && (!this.#checkpoint || ckpt.t > this.#checkpoint.t || (ckpt.t === this.#checkpoint.t && ckpt.v > this.#checkpoint.v))) {
      this.#checkpoint = ckpt;
    }
    if (message.handoff !== undefined && !message.master) {
      this.#log(4, `${message.hostname} hands the master role to ${message.handoff}`);
      this.#handoff = { target: message.handoff, until: now.mono + this.tockMs, stepDown: false };
      this.#settled = true;
    }
  }

  #receivePromote(requester: string, target: string, now: Instant): void {
    if (target !== this.hostname || this.#role !== 'master') return;
    const peer = this.#peers.get(requester);
    if (!peer || !peer.record.eligible || !this.#isLive(peer, now)) {
      this.#log(4, `Ignoring promote request from ${requester}: not a live eligible server`);
      return;
    }
    this.#log(4, `${requester} asked for the master role: handing off`);
    this.#handOff(requester, now);
  }

  #handOff(target: string, now: Instant): void {
    this.#handoff = { target, until: now.mono + this.tockMs, stepDown: true };
    this.#relinquish(`handing off to ${target}`);
    this.#sendHeartbeat(now, target);
  }

  /** Make the record show `message` and follow its instance. */
  #follow(peer: Peer, message: HeartbeatMessage, address: string, heardAt: number, now: Instant): void {
    const record = peer.record;
    record.ip = message.ip;
    record.master = message.master;
    if (record.eligible !== message.eligible) {
      this.#log(5, `Server ${message.hostname} is ${message.eligible ? 'now' : 'no longer'} eligible`);
      this.#reportMembersSoon = true;
    }
    record.eligible = message.eligible;
    record.uptime = message.uptime;
    record.data = message.data;
    record.now = now.wall / 1000;
    record.priority = message.prio ?? 0;
    record.term = message.term ?? 0;
    if (peer.iid === message.iid) this.#noteSkipped(peer, message.seq ?? -1, now);
    else peer.skipped.clear();
    peer.iid = message.iid;
    peer.seq = message.seq ?? -1;
    peer.lastHeard = heardAt;
    peer.address = address;
    this.#leftLocked.delete(peer);
    this.#place(message.hostname, peer, now);
    this.#noteClaim(message.hostname, message.master);
  }

  /** Keep #peers in heard order after `peer.lastHeard` changed. */
  #place(hostname: string, peer: Peer, now: Instant): void {
    this.#peers.delete(hostname);
    if (peer.lastHeard >= now.mono) {
      this.#peers.set(hostname, peer);
      return;
    }
    // Heard earlier than now (following the other process of a duplicate): rare, so re-sort.
    this.#peers = new Map([...this.#peers, [hostname, peer] as [string, Peer]].sort((a, b) => a[1].lastHeard - b[1].lastHeard));
  }

  #noteClaim(hostname: string, master: boolean): void {
    if (master) this.#claiming.add(hostname);
    else this.#claiming.delete(hostname);
  }

  /**
   * A heartbeat for a known hostname from another instance than the one we follow: a
   * restart, or, when the instance we followed before speaks again, two live processes
   * with one hostname. Returns whether to follow the sender from now on.
   */
  #switchInstance(peer: Peer, message: HeartbeatMessage, from: Address, now: Instant): boolean {
    const other = peer.other && now.mono - peer.other.lastHeard < this.deadAfterMs ? peer.other : null;
    if (!other || other.iid !== message.iid) {
      // A new instance: the old process is gone (a restart), or this is the first sign of a duplicate.
      if (peer.iid !== undefined) this.#log(5, `Server ${message.hostname} restarted (new instance)`);
      peer.other = snapshot(peer);
      peer.duplicate = false;
      peer.iidSince = now.mono;
      peer.heard = 0;
      return true;
    }
    if (!peer.duplicate && now.mono - peer.iidSince < this.#holdoffMs) {
      // The previous process's last packets, overtaken in flight by the new one's first.
      this.#log(9, `Ignoring a late packet from the previous instance of ${message.hostname}`);
      this.#out.dropped = 'stale';
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
    const sender = { iid: message.iid ?? '', address: from.address };
    const followed = { iid: peer.iid ?? '', address: peer.address };
    const senderKeeps = outranks(message.master, sender.iid, peer.record.master, followed.iid);
    if (now.mono - peer.reportedAt >= this.tockMs) {
      peer.reportedAt = now.mono;
      this.#reportDuplicate(message.hostname, senderKeeps ? sender : followed, senderKeeps ? followed : sender, false);
    }
    if (!senderKeeps) {
      this.#out.dropped = 'yielded';
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
  #adoptNamesake(hostname: string, peer: Peer, now: Instant, why: string): boolean {
    const other = peer.duplicate && peer.other && now.mono - peer.other.lastHeard < this.deadAfterMs ? peer.other : null;
    if (!other?.heartbeat) return false;
    this.#log(4, `Server ${hostname} (${peer.address}) ${why}; its namesake at ${other.address} remains`);
    this.#follow(peer, other.heartbeat, other.address, other.lastHeard, now);
    peer.iid = other.iid;
    peer.seq = other.seq;
    peer.skipped.clear();
    peer.heard = other.heard;
    peer.other = null;
    peer.duplicate = false;
    return true;
  }

  #receiveShutdown(message: Message, now: Instant): void {
    if (message.iid !== undefined) {
      this.#departed.delete(message.hostname);
      this.#departed.set(message.hostname, { iid: message.iid, seq: message.seq ?? Infinity, until: now.mono + this.#holdoffMs });
      // Bounded like the table: forget the oldest departures first.
      if (this.#departed.size > this.#maxServers) this.#departed.delete(this.#departed.keys().next().value as string);
    }
    const peer = this.#peers.get(message.hostname);
    if (!peer) return;
    // A notice from another instance than the one we hear (or an anonymous one for a
    // server that names its instance) is not that server leaving.
    if (peer.iid !== undefined && message.iid !== peer.iid) {
      if (peer.other && message.iid === peer.other.iid) {
        this.#log(4, `The other process named ${message.hostname} (${peer.other.address}) is shutting down`);
        peer.other = null;
        peer.duplicate = false;
        return;
      }
      this.#log(5, `Ignoring shutdown notice for ${message.hostname}: instance id does not match`);
      return;
    }
    if (this.#adoptNamesake(message.hostname, peer, now, 'is shutting down')) return;
    this.#log(4, `Server ${message.hostname} is shutting down`);
    peer.record.master = false;
    this.#noteClaim(message.hostname, false);
    if (peer.record.locked) {
      this.#leftLocked.add(peer);
      peer.lastHeard = now.mono - this.deadAfterMs; // dead at once, but kept: it is locked
      this.#place(message.hostname, peer, now); // its deadline is now the oldest
    } else {
      this.#remove(message.hostname, peer);
    }
  }

  // ---- the rules ---------------------------------------------------------------------

  /** A hello: every live server answers at once (within a holdoff), and the echoes admit them all. */
  #askWhoIsThere(now: Instant): void {
    const helloSeq = this.#nextSeq();
    this.#send(this.#stamp({ action: 'hello', hostname: this.hostname, iid: this.instanceId, seq: helloSeq }));
    this.#guard?.issued(helloSeq, undefined, now.mono, this.#challengeTtlMs);
  }

  /**
   * A server that was below quorum (the minority side of a partition) and hears enough
   * servers again is like a joiner: the majority probably has a master it has not heard
   * yet. It asks who is there and listens for half a tick (ending early when it hears a
   * master; every server answers a hello within a quarter tick) instead of claiming at
   * once and forcing a needless change of master on the healed majority. A whole tock,
   * as at start, would hold a healed cluster with no master at all for longer than the
   * tock SPEC allows it (found by the simulator, quorum seed 154).
   */
  #trackQuorum(now: Instant): void {
    if (this.#quorum <= 0) return;
    const has = this.#hasQuorum(now);
    if (!has) {
      this.#belowQuorum = true;
    } else if (this.#belowQuorum) {
      this.#belowQuorum = false;
      this.#settled = false;
      const listen = Math.min(this.tockMs, this.#tickMs / 2);
      this.#listenUntil = Math.max(this.#listenUntil, now.mono + listen);
      this.#askWhoIsThere(now);
      this.#log(4, `Quorum reached (${this.#quorum}): asking who is there, and listening ${Math.round(listen)} ms before any claim to master`);
    }
  }

  #evaluate(now: Instant): void {
    if (now.mono < this.#drainUntil) return; // read what queued up during a stall first
    const deadAfter = this.deadAfterMs;
    const dead: Array<[string, Peer]> = [];
    for (const [hostname, peer] of this.#peers) {
      // The first live peer ends the scan: every peer after it was heard later (see #peers).
      if (now.mono < peer.lastHeard + deadAfter) {
        if (peer.record.locked) continue; // a locked peer may sit anywhere: it is never moved when dead
        break;
      }
      dead.push([hostname, peer]);
    }
    for (const [hostname, peer] of dead) {
      if (this.#quorum > 0 && peer.record.master && !this.#leftLocked.has(peer)) this.#silentMasterHeardAt = Math.max(this.#silentMasterHeardAt, peer.lastHeard);
      // Of two processes with this hostname, the one we followed died: the other is still
      // here, locked or not (found by the simulator, seeds 270 and 181: the live one was
      // removed, or ignored while a locked record of the dead one stood in for it).
      if (this.#adoptNamesake(hostname, peer, now, 'went silent')) continue;
      if (peer.record.locked) {
        // Kept, being locked, but a silent server is master of nothing: its record must not
        // show a second master beside the one elected after it.
        if (peer.record.master) {
          peer.record.master = false;
          this.#noteClaim(hostname, false);
        }
        continue;
      }
      this.#log(8, `Removing dead server from cluster: ${hostname} (silent for ${Math.round(now.mono - peer.lastHeard)} ms)`);
      this.#remove(hostname, peer);
    }
    this.#trackQuorum(now);
    // Deadlines are compared as `now >= start + span`, the very sum #wakeAt asks to be woken
    // at: `now - start >= span` can be false at that instant by floating-point rounding
    // (80.7 + 100 - 80.7 < 100), and the core then asked to be woken again at once, forever
    // (found by the simulator, seed 40).
    if (!this.#settled && now.mono >= this.#listenUntil) this.#settled = true;
    this.#expireNamesake(now);
    if (this.#role === 'master' && this.#yieldsName(now)) {
      this.#relinquish(`another live process named ${this.hostname} keeps the name`);
      this.#sendHeartbeat(now);
    }

    let claimants: string[] = [];
    for (const hostname of this.#claiming) {
      const peer = this.#peers.get(hostname);
      if (peer && this.#isLive(peer, now)) claimants.push(hostname);
    }
    if (claimants.length > 1 && this.#role !== 'master') claimants = this.#newestClaim(claimants);

    if (this.#role === 'master' && !this.#hasQuorum(now)) {
      this.#relinquish(`lost quorum: fewer than ${this.#quorum} eligible servers visible`);
      this.#sendHeartbeat(now);
    }

    if (this.#role === 'master') {
      if (claimants.length === 0) return;
      const rival = claimants.sort((a, b) => this.#compare(a, b))[0] as string;
      this.#event({ type: 'conflict', hostname: rival });
      if (this.#compare(this.hostname, rival) < 0) {
        // We rank first, so we are the one the recomputation picks: keep the role, take a
        // term above the rival's, and say so at once; the rival yields when it hears us.
        this.#log(1, `MASTER CONFLICT: ${rival} also thinks it is master; we rank first and keep the role`);
        const rivalTerm = this.#peers.get(rival)?.record.term ?? 0;
        if (rivalTerm >= this.#term) this.#term = rivalTerm + 1;
        this.#self.term = this.#term;
        this.#answerSoon(now);
        return;
      }
      this.#log(1, `MASTER CONFLICT: ${rival} also thinks it is master and ranks first`);
      if (this.#exitOnConflict) {
        this.#log(1, 'The server is shutting down due to master conflict');
        this.#exiting = true;
        this.#role = 'none';
        this.#self.master = false;
        this.#setMasterHostname('');
        this.#event({ type: 'exit', reason: `master conflict with ${rival}` });
        return;
      }
      this.#relinquish(`master conflict with ${rival}`);
      this.#sendHeartbeat(now);
    }

    if (claimants.length === 1) {
      const master = claimants[0] as string;
      this.#settled = true;
      this.#handoffDone(master);
      this.#setMasterHostname(master);
      this.#becomeSlave();
      return;
    }
    // None, or several (a conflict among peers, which they resolve between themselves).
    this.#setMasterHostname('');
    if (claimants.length === 0 && this.#mayClaim(now)) this.#becomeMaster(now);
  }

  /**
   * Of several live claimants, a slave follows the one with the highest term when it is
   * the only one: terms only grow with each new master, so the others are older claims
   * about to end. In a handoff the new master's claim can overtake the old master's
   * "I hand off" heartbeat on the way to a third server, which saw two masters at once
   * for a moment (found by the simulator, handoff seeds 34, 60, 72). Their records show
   * `master: false` while superseded, so no reader of `servers` sees two masters either.
   * Equal terms (old servers send none) leave all of them: no master until they settle.
   * Masters themselves still see every rival: conflicts are resolved by rank (#evaluate).
   */
  #newestClaim(claimants: string[]): string[] {
    let newest = '';
    let newestTerm = -1;
    let tie = false;
    for (const hostname of claimants) {
      const term = this.#peers.get(hostname)?.record.term ?? 0;
      if (term > newestTerm) {
        newest = hostname;
        newestTerm = term;
        tie = false;
      } else if (term === newestTerm) {
        tie = true;
      }
    }
    if (tie) return claimants;
    for (const hostname of claimants) {
      const record = this.#peers.get(hostname)?.record;
      if (record && hostname !== newest) record.master = false;
    }
    return [newest];
  }

  #mayClaim(now: Instant): boolean {
    if (!this.#self.eligible || !this.#settled || this.#stopped || !this.#hasQuorum(now, true) || this.#yieldsName(now)) return false;
    // A lease, in effect: a master that went silent may keep the role on its side of a cut
    // until its quorum window runs out, at most a tick + a tock after we last heard it.
    // Claiming no earlier keeps the two from overlapping when heartbeat phases differ
    // (found by the simulator, quorum seeds 151 and 480); failover stays within the
    // tock + tick of SPEC 4.4. With check_beats 1 the window is longer than a tock and a
    // brief overlap remains possible.
    if (this.#quorum > 0 && now.mono < this.#silentMasterHeardAt + this.tockMs + this.#tickMs) return false;
    const handoff = this.#handoff;
    if (handoff && now.mono < handoff.until) {
      if (handoff.target === this.hostname) return true;
      const target = this.#peers.get(handoff.target);
      if (target && this.#isLive(target, now)) return false; // it claims, not us
    }
    for (const [hostname, peer] of this.#peers) {
      if (peer.record.eligible && this.#isLive(peer, now) && this.#compare(hostname, this.hostname) < 0) return false;
    }
    return true;
  }

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  #compare(a: string, b: string): number {
    const pa = a === this.hostname ? this.#priority : (this.#peers.get(a)?.record.priority ?? 0);
    const pb = b === this.hostname ? this.#priority : (this.#peers.get(b)?.record.priority ?? 0);
    if (pa !== pb) return pb - pa;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /** The live eligible peer that ranks first, if any. */
  #bestPeer(now: Instant): string | null {
    let best: string | null = null;
    for (const [hostname, peer] of this.#peers) {
      if (!peer.record.eligible || !this.#isLive(peer, now)) continue;
      if (best === null || this.#compare(hostname, best) < 0) best = hostname;
    }
    return best;
  }

  /**
   * Quorum counts eligible servers (self included) heard within the last tock (see
   * #quorumWindowMs), not the tock + grace used for removal: a master cut off from the
   * majority steps down within one tock, before the majority can elect a replacement
   * (which also waits out the lease in #mayClaim).
   *
   * A claim needs more: the quorum heard within the last tick and a half (`claim`). A
   * server decides its master is dead a tock after the master's last heartbeat; servers
   * cut off at the same moment as the master still look alive for that tock, so counting
   * them let a server on the minority side of a partition claim (found by the simulator,
   * quorum seed 154). Live peers are heard every tick, so a real quorum passes at once.
   */
  #hasQuorum(now: Instant, claim = false): boolean {
    if (this.#quorum <= 0) return true;
    let visible = this.#self.eligible ? 1 : 0;
    const window = claim ? Math.min(this.#quorumWindowMs, 1.5 * this.#tickMs) : this.#quorumWindowMs;
    for (const peer of this.#peers.values()) {
      if (peer.record.eligible && now.mono < peer.lastHeard + window) visible++; // the very sum #wakeAt wakes us at (see seed 40)
    }
    return visible >= this.#quorum;
  }

  /**
   * A tock; with check_beats 1, a quarter tick more: a tock of a single heartbeat interval
   * leaves no room for jitter, and the master would step down between two heartbeats.
   */
  get #quorumWindowMs(): number {
    return Math.max(this.tockMs, (1 + DEADLINE_GRACE_TICKS) * this.#tickMs);
  }

  /** A master exists: a handoff in progress has ended, one way or the other. */
  #handoffDone(master: string): void {
    const handoff = this.#handoff;
    if (!handoff) return;
    this.#handoff = null;
    if (!handoff.stepDown) return;
    if (master === this.hostname) {
      this.#event({ type: 'stepdown', ok: false, hostname: handoff.target, reason: `${handoff.target} did not take over; we are master again` });
    } else {
      this.#event({ type: 'stepdown', ok: true, hostname: master, reason: `${master} is master` });
    }
  }

  #expireRequests(now: Instant): void {
    const handoff = this.#handoff;
    if (handoff && now.mono >= handoff.until) {
      this.#handoff = null;
      this.#log(4, `Handoff to ${handoff.target} did not complete within a tock; electing as usual`);
      if (handoff.stepDown) this.#event({ type: 'stepdown', ok: false, hostname: handoff.target, reason: `${handoff.target} did not take over within a tock` });
    }
    if (now.mono >= this.#promoteUntil) {
      this.#promoteUntil = Infinity;
      if (this.#role !== 'master') this.#event({ type: 'promote', ok: false, reason: 'the master did not hand over within a tock' });
    }
  }

  /** Our own timer fired more than a tick late: the event loop stalled (CPU starvation, paused VM). */
  #checkStall(now: Instant): void {
    const late = now.mono - this.#requestedWake;
    if (late <= this.#tickMs) return;
    this.#log(2, `Event loop stalled: woke ${Math.round(late)} ms late; reading queued packets before judging any peer`);
    this.#drainUntil = now.mono + STALL_DRAIN_MS;
    this.#requestedWake = Infinity;
    if (this.#role === 'master' && now.mono - this.#lastHeartbeatAt >= this.deadAfterMs) {
      // Silent longer than the others wait before electing a replacement: they probably
      // have one. Fence ourselves now rather than fight it; if nobody took over, the
      // election after the drain gives the role straight back.
      this.#relinquish(`stalled ${Math.round(now.mono - this.#lastHeartbeatAt)} ms, longer than peers wait for a master`);
      this.#sendHeartbeat(now);
    }
  }

  #isLive(peer: Peer, now: Instant): boolean {
    return now.mono < peer.lastHeard + this.deadAfterMs;
  }

  #becomeMaster(now: Instant): void {
    this.#role = 'master';
    this.#self.master = true;
    this.#term += 1;
    this.#self.term = this.#term;
    this.#handoffDone(this.hostname);
    this.#setMasterHostname(this.hostname);
    this.#log(4, `We are now the master server (term ${this.#term})`, { servers: [...this.#peers.keys(), this.hostname].sort() });
    this.#event({ type: 'master', term: this.#term, checkpoint: this.checkpoint });
    if (this.#promoteUntil !== Infinity) {
      this.#promoteUntil = Infinity;
      this.#event({ type: 'promote', ok: true, reason: `master with term ${this.#term}` });
    }
    this.#sendHeartbeat(now);
  }

  #becomeSlave(): void {
    if (this.#role === 'slave') return;
    this.#role = 'slave';
    this.#self.master = false;
    this.#log(4, `We are now a slave server (master: ${this.#masterHostname})`);
    this.#event({ type: 'slave' });
  }

  #relinquish(reason: string): void {
    this.#log(reason.startsWith('master conflict') ? 1 : 4, `We are relinquishing master control: ${reason}`);
    this.#role = 'slave';
    this.#self.master = false;
    this.#setMasterHostname('');
    this.#event({ type: 'slave' });
  }

  #setMasterHostname(hostname: string): void {
    if (hostname === this.#masterHostname) return;
    const previous = this.#masterHostname;
    this.#masterHostname = hostname;
    if (hostname && hostname !== this.hostname) this.#log(6, `The master server is now: ${hostname}`);
    this.#event({ type: 'masterchange', hostname, previous });
  }

  /**
   * After a step that may have changed it (a join, a departure, an eligibility flip),
   * report the live eligible set if it changed: that is when keys move.
   */
  #reportMembers(now: Instant): void {
    const members = this.eligibleMembers(now);
    const joined = members.join('\n');
    if (joined === this.#lastMembers) return;
    this.#lastMembers = joined;
    this.#out.events.push({ type: 'members', members });
  }

  #remove(hostname: string, peer: Peer): void {
    this.#peers.delete(hostname);
    this.#claiming.delete(hostname);
    delete this.table[hostname];
    this.#event({ type: 'deleteserver', server: peer.record });
  }

  // ---- output ------------------------------------------------------------------------

  /** Answers to hellos are at least this far apart; also how late a packet may overtake another. */
  get #holdoffMs(): number {
    return Math.min(this.#tickMs / 4, MAX_ANSWER_HOLDOFF_MS);
  }

  /**
   * How long an echo of our hello admits an instance. Answers come within a holdoff; any
   * longer only allows for a slow network, since each echo admits its sender once.
   */
  get #challengeTtlMs(): number {
    return Math.max(this.#tickMs, 1000);
  }

  /**
   * Answer with a heartbeat at once, unless we already answered within the holdoff:
   * then once at its end. A joiner gets its round trip; a flood gets a trickle.
   */
  #answerSoon(now: Instant): void {
    const holdoff = this.#holdoffMs;
    if (now.mono - this.#lastAnswerAt >= holdoff) {
      this.#answer(now);
    } else {
      this.#answerDueAt = Math.min(this.#answerDueAt, this.#lastAnswerAt + holdoff);
    }
  }

  #answer(now: Instant): void {
    this.#lastAnswerAt = now.mono;
    this.#sendHeartbeat(now);
  }

  #sendHeartbeat(now: Instant, handingTo?: string): void {
    // Every heartbeat of a handoff in progress names the target, not just the first: when a
    // later one overtakes it, the first is dropped as stale (found by the property tests).
    const pending = this.#handoff;
    const handoff = handingTo ?? (pending?.stepDown && this.#role !== 'master' ? pending.target : undefined);
    const self = this.#self;
    self.term = this.#term;
    self.uptime = Math.max(0, Math.floor((now.mono - this.#startedAt) / 1000));
    self.now = now.wall / 1000;
    const heartbeat: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: this.hostname,
      ip: this.#ip,
      master: this.#role === 'master',
      eligible: self.eligible,
      uptime: self.uptime,
      data: self.data,
      iid: this.instanceId,
      seq: this.#nextSeq(),
    };
    // New fields only when they say something, so a default cluster sends the original's packets (plus iid/seq).
    if (this.#term > 0) heartbeat.term = this.#term;
    if (this.#priority !== 0) heartbeat.prio = this.#priority;
    if (handoff !== undefined) heartbeat.handoff = handoff;
    // The master (and a master handing off) carries the checkpoint, so every server holds the latest.
    if (this.#checkpoint && (this.#role === 'master' || handoff !== undefined)) heartbeat.ckpt = this.#checkpoint;
    const echo = this.#guard?.takeEchoes();
    if (echo) heartbeat.echo = echo;
    this.#send(this.#stamp(heartbeat));
    this.#answerDueAt = Infinity; // any heartbeat answers every pending hello
    this.#lastHeartbeatAt = now.mono;
  }

  #stamp<T extends Message>(message: T): T {
    if (this.#clusterId) message.cid = this.#clusterId;
    return message;
  }

  #nextSeq(): number {
    return ++this.#seq;
  }

  #send(message: Message, to?: Address): void {
    const outbound: Outbound = to ? { message, to } : { message };
    this.#out.send.push(outbound);
  }

  #event(event: CoreEvent): void {
    this.#out.events.push(event);
    // Only joins and departures (and eligibility flips, flagged where they happen) can
    // change the member set; other events need no re-sort of every hostname.
    if (event.type === 'addserver' || event.type === 'deleteserver') this.#reportMembersSoon = true;
  }

  #log(level: number, message: string, data?: unknown): void {
    this.#out.logs.push(data === undefined ? { level, message } : { level, message, data });
  }

  #wakeAt(now: Instant): number {
    if (!this.#active) return Infinity;
    if (now.mono < this.#drainUntil) return this.#drainUntil;
    let wake = Math.min(this.#nextHeartbeatAt, this.#answerDueAt, this.#promoteUntil);
    if (this.#handoff) wake = Math.min(wake, this.#handoff.until);
    if (!this.#settled) wake = Math.min(wake, this.#listenUntil);
    // With a quorum, a peer leaving the quorum window may change who may be master.
    if (this.#quorum > 0) {
      const window = this.#quorumWindowMs;
      for (const peer of this.#peers.values()) {
        const leaves = peer.lastHeard + window;
        if (leaves > now.mono) wake = Math.min(wake, leaves);
      }
      const leaseEnds = this.#silentMasterHeardAt + this.tockMs + this.#tickMs;
      if (leaseEnds > now.mono) wake = Math.min(wake, leaseEnds);
    }
    const deadAfter = this.deadAfterMs;
    // Every entry point evaluates before flushing, so a deadline already past belongs to a
    // locked peer, which needs no further wake-up. In heard order the first deadline still
    // ahead is the earliest (see #peers).
    for (const peer of this.#peers.values()) {
      const deadline = peer.lastHeard + deadAfter;
      if (deadline > now.mono) {
        wake = Math.min(wake, deadline);
        break;
      }
    }
    // When the other process with our hostname falls silent, we may claim again.
    const namesakeGone = this.#namesake ? this.#namesake.lastHeard + deadAfter : Infinity;
    if (namesakeGone > now.mono) wake = Math.min(wake, namesakeGone);
    return wake;
  }

  #flush(now: Instant): Output {
    if (this.#started && this.#reportMembersSoon) {
      this.#reportMembersSoon = false;
      this.#reportMembers(now);
    }
    const out = this.#out;
    out.wakeAt = this.#wakeAt(now);
    if (this.#active) this.#requestedWake = out.wakeAt;
    this.#out = emptyOutput();
    return out;
  }
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

function snapshot(peer: Peer): OtherInstance {
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

function emptyOutput(): Output {
  return { send: [], events: [], logs: [], wakeAt: Infinity };
}
