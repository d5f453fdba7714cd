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
 *  - two masters (after a partition heals, say): the one that sorts later relinquishes
 *    (or exits, with exit_on_conflict); the one that sorts first keeps the role and
 *    re-announces it at once, so the app on the winner sees no needless slave/master flap.
 */
import type {
  Address,
  CoreEvent,
  HeartbeatMessage,
  Instant,
  JsonObject,
  LogLine,
  Message,
  Outbound,
  Output,
  ServerRecord,
} from './types';

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
}

const DEFAULT_MAX_SERVERS = 1000;
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

  #self: ServerRecord;
  #peers = new Map<string, Peer>();
  #role: Role = 'none';
  #masterHostname = '';
  #started = false;
  #stopped = false;
  /** Set when exit_on_conflict fired: we wait for the shell to shut us down, deciding nothing. */
  #exiting = false;
  #startedAt = 0;
  /** True once we may claim: a tock of listening has passed, or we have seen a master. */
  #settled = false;
  #nextHeartbeatAt = Infinity;
  #lastAnswerAt = -Infinity;
  #answerDueAt = Infinity;
  #lastFullLogAt = -Infinity;
  #lastDuplicateLogAt = -Infinity;

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

  // ---- inputs ----------------------------------------------------------------------

  /** Begin: ask who is there, announce ourselves, and start listening for a tock. */
  start(now: Instant): Output {
    if (this.#started) return this.#flush(now);
    this.#started = true;
    this.#startedAt = now.mono;
    this.#self.now = now.wall / 1000;
    this.#send({ action: 'hello', hostname: this.hostname, iid: this.instanceId, seq: this.#nextSeq() });
    this.#sendHeartbeat(now);
    this.#log(4, `Listening for the cluster for ${this.tockMs} ms before any claim to master`);
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** A validated message arrived from `from`. */
  receive(message: Message, from: Address, now: Instant): Output {
    if (!this.#active) return this.#flush(now);
    if (message.hostname === this.hostname) {
      this.#receiveOwnHostname(message, from, now);
    } else {
      this.#receiveFromPeer(message, from, now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  #receiveFromPeer(message: Message, from: Address, now: Instant): void {
    const peer = this.#peers.get(message.hostname);
    if (peer && this.#isStale(peer, message)) {
      this.#log(9, `Ignoring a stale ${message.action} from ${message.hostname} (overtaken by a newer packet)`);
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
        this.#log(9, `Hello from ${message.hostname} (${from.address}), answering`);
        this.#answerSoon(now);
        break;
    }
  }

  /** Time passed; do whatever is due (heartbeat, deadlines, claims). */
  tick(now: Instant): Output {
    if (!this.#active) return this.#flush(now);
    this.#evaluate(now);
    if (now.mono >= this.#answerDueAt) this.#answer(now);
    if (now.mono >= this.#nextHeartbeatAt) this.#sendHeartbeat(now);
    return this.#flush(now);
  }

  /** Change our eligibility; broadcast it at once. A master made ineligible steps down. */
  setEligible(eligible: boolean, now: Instant): Output {
    if (this.#self.eligible === eligible) return this.#flush(now);
    this.#self.eligible = eligible;
    this.#log(4, `Eligibility changed: we are ${eligible ? 'now' : 'no longer'} eligible to be master`);
    if (!this.#active) return this.#flush(now);
    if (!eligible && this.#role === 'master') this.#stepDown('we are no longer eligible');
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

  setExitOnConflict(value: boolean): void {
    this.#exitOnConflict = value;
  }

  /** Leave gracefully: tell the cluster, so the survivors elect without waiting a tock. */
  shutdown(now: Instant): Output {
    if (this.#stopped) return this.#flush(now);
    this.#stopped = true;
    if (this.#started) {
      this.#send({ action: 'shutdown', hostname: this.hostname, iid: this.instanceId, seq: this.#nextSeq() });
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

  #receiveOwnHostname(message: Message, from: Address, now: Instant): void {
    // Broadcast loops back to our own socket; that echo carries our instance id.
    if (message.iid === this.instanceId) return;
    if (now.mono - this.#lastDuplicateLogAt >= this.tockMs) {
      this.#lastDuplicateLogAt = now.mono;
      this.#log(1, `DUPLICATE HOSTNAME: another process at ${from.address} also calls itself ${this.hostname}; its packets are ignored`);
      this.#event({ type: 'duplicate', hostname: this.hostname, address: from.address });
    }
  }

  /** Same instance, sequence not above the last one heard: reordered or repeated. */
  #isStale(peer: Peer, message: Message): boolean {
    return message.iid !== undefined && message.iid === peer.iid && message.seq !== undefined && message.seq <= peer.seq;
  }

  #receiveHeartbeat(message: HeartbeatMessage, from: Address, now: Instant): void {
    const existing = this.#peers.get(message.hostname);
    if (existing) {
      const record = existing.record;
      record.ip = message.ip;
      record.master = message.master;
      record.eligible = message.eligible;
      record.uptime = message.uptime;
      record.data = message.data;
      record.now = now.wall / 1000;
      if (existing.iid !== message.iid && existing.iid !== undefined) {
        this.#log(5, `Server ${message.hostname} restarted (new instance)`);
      }
      existing.iid = message.iid;
      existing.seq = message.seq ?? -1;
      existing.lastHeard = now.mono;
      existing.address = from.address;
      this.#log(10, `Heartbeat from ${message.hostname}`, record);
      return;
    }
    if (this.#peers.size + 1 >= this.#maxServers) {
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
    };
    this.#peers.set(message.hostname, { record, lastHeard: now.mono, iid: message.iid, seq: message.seq ?? -1, address: from.address });
    this.table[message.hostname] = record;
    this.#log(5, `Server joined the cluster: ${message.hostname} (${message.ip})`);
    this.#event({ type: 'addserver', server: record });
  }

  #receiveShutdown(message: Message, now: Instant): void {
    const peer = this.#peers.get(message.hostname);
    if (!peer) return;
    // A notice from another instance than the one we hear (or an anonymous one for a
    // server that names its instance) is not that server leaving.
    if (peer.iid !== undefined && message.iid !== peer.iid) {
      this.#log(5, `Ignoring shutdown notice for ${message.hostname}: instance id does not match`);
      return;
    }
    this.#log(4, `Server ${message.hostname} is shutting down`);
    peer.record.master = false;
    if (peer.record.locked) {
      peer.lastHeard = now.mono - this.deadAfterMs; // dead at once, but kept: it is locked
    } else {
      this.#remove(message.hostname, peer);
    }
  }

  // ---- the rules ---------------------------------------------------------------------

  #evaluate(now: Instant): void {
    const deadAfter = this.deadAfterMs;
    for (const [hostname, peer] of this.#peers) {
      if (now.mono - peer.lastHeard >= deadAfter && !peer.record.locked) {
        this.#log(8, `Removing dead server from cluster: ${hostname} (silent for ${Math.round(now.mono - peer.lastHeard)} ms)`);
        this.#remove(hostname, peer);
      }
    }
    if (!this.#settled && now.mono - this.#startedAt >= this.tockMs) this.#settled = true;

    const claimants: string[] = [];
    for (const [hostname, peer] of this.#peers) {
      if (peer.record.master && this.#isLive(peer, now)) claimants.push(hostname);
    }

    if (this.#role === 'master') {
      if (claimants.length === 0) return;
      const rival = claimants.sort()[0] as string;
      this.#event({ type: 'conflict', hostname: rival });
      if (this.hostname < rival) {
        // We sort first, so we are the one the recomputation picks: keep the role and
        // say so at once; the rival yields when it hears us.
        this.#log(1, `MASTER CONFLICT: ${rival} also thinks it is master; we sort first and keep the role`);
        this.#answerSoon(now);
        return;
      }
      this.#log(1, `MASTER CONFLICT: ${rival} also thinks it is master and sorts first`);
      if (this.#exitOnConflict) {
        this.#log(1, 'The server is shutting down due to master conflict');
        this.#exiting = true;
        this.#role = 'none';
        this.#self.master = false;
        this.#setMasterHostname('');
        this.#event({ type: 'exit', reason: `master conflict with ${rival}` });
        return;
      }
      this.#stepDown(`master conflict with ${rival}`);
      this.#sendHeartbeat(now);
    }

    if (claimants.length === 1) {
      this.#settled = true;
      this.#setMasterHostname(claimants[0] as string);
      this.#becomeSlave();
      return;
    }
    // None, or several (a conflict among peers, which they resolve between themselves).
    this.#setMasterHostname('');
    if (claimants.length === 0 && this.#mayClaim(now)) this.#becomeMaster(now);
  }

  #mayClaim(now: Instant): boolean {
    if (!this.#self.eligible || !this.#settled || this.#stopped) return false;
    for (const [hostname, peer] of this.#peers) {
      if (peer.record.eligible && hostname < this.hostname && this.#isLive(peer, now)) return false;
    }
    return true;
  }

  #isLive(peer: Peer, now: Instant): boolean {
    return now.mono - peer.lastHeard < this.deadAfterMs;
  }

  #becomeMaster(now: Instant): void {
    this.#role = 'master';
    this.#self.master = true;
    this.#setMasterHostname(this.hostname);
    this.#log(4, 'We are now the master server', { servers: [...this.#peers.keys(), this.hostname].sort() });
    this.#event({ type: 'master' });
    this.#sendHeartbeat(now);
  }

  #becomeSlave(): void {
    if (this.#role === 'slave') return;
    this.#role = 'slave';
    this.#self.master = false;
    this.#log(4, `We are now a slave server (master: ${this.#masterHostname})`);
    this.#event({ type: 'slave' });
  }

  #stepDown(reason: string): void {
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

  #remove(hostname: string, peer: Peer): void {
    this.#peers.delete(hostname);
    delete this.table[hostname];
    this.#event({ type: 'deleteserver', server: peer.record });
  }

  // ---- output ------------------------------------------------------------------------

  /**
   * Answer with a heartbeat at once, unless we already answered within the holdoff:
   * then once at its end. A joiner gets its round trip; a flood gets a trickle.
   */
  #answerSoon(now: Instant): void {
    const holdoff = Math.min(this.#tickMs / 4, MAX_ANSWER_HOLDOFF_MS);
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

  #sendHeartbeat(now: Instant): void {
    const self = this.#self;
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
    this.#send(heartbeat);
    this.#answerDueAt = Infinity; // any heartbeat answers every pending hello
    this.#nextHeartbeatAt = now.mono + this.#tickMs;
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
  }

  #log(level: number, message: string, data?: unknown): void {
    this.#out.logs.push(data === undefined ? { level, message } : { level, message, data });
  }

  #wakeAt(now: Instant): number {
    if (!this.#active) return Infinity;
    let wake = Math.min(this.#nextHeartbeatAt, this.#answerDueAt);
    if (!this.#settled) wake = Math.min(wake, this.#startedAt + this.tockMs);
    const deadAfter = this.deadAfterMs;
    // Every entry point evaluates before flushing, so a deadline already past belongs to a
    // locked peer, which needs no further wake-up.
    for (const peer of this.#peers.values()) {
      const deadline = peer.lastHeard + deadAfter;
      if (deadline > now.mono) wake = Math.min(wake, deadline);
    }
    return wake;
  }

  #flush(now: Instant): Output {
    const out = this.#out;
    out.wakeAt = this.#wakeAt(now);
    this.#out = emptyOutput();
    return out;
  }
}

function emptyOutput(): Output {
  return { send: [], events: [], logs: [], wakeAt: Infinity };
}
