/**
 * The lease election: mastership decided by a linearizable store with leases (etcd), as a
 * pure state machine. No I/O, no timers, no clock reads: every input carries the time,
 * every step returns what to do (store ops, datagrams, events, logs, when to wake).
 *
 * The contract is the UDP core's, in store terms:
 *  - we hold a lease and keep it alive; our record lives at `members/<hostname>` under it,
 *    so membership is the set of live leases' records, followed by a watch;
 *  - the master is whoever created the `master` key (under its lease); a campaign is one
 *    transaction "create it if absent". The term is the key's create revision: strictly
 *    increasing, unique, the same on every server, and checkable by the store itself
 *    (a write fenced with "the master key still has create revision T" fails once the
 *    master of term T is gone);
 *  - we act as master only while our lease cannot have expired at the store. Its expiry
 *    there is at least `TTL` after the store acknowledged our last keep-alive, so at least
 *    `TTL` after we SENT that keep-alive; we stop a margin before that instant, whatever
 *    else happens (a lost connection, a frozen process, late timers). Every input first
 *    checks that deadline, so a process resumed after a freeze steps down before anything;
 *  - rank as the UDP core: with no master, the eligible member that ranks first (higher
 *    priority, then hostname in plain string order) campaigns, once it has listened for a
 *    tick after start; after `patience` without a master anyone eligible does, so a member
 *    that ranks first but never campaigns cannot block the cluster. A running master is
 *    never displaced by a joiner: it holds the key;
 *  - a handoff (stepDown, promote, a master made ineligible) deletes the key and names the
 *    successor in one fenced transaction; the successor campaigns at once and the others
 *    wait for it for a tock. Graceful shutdown revokes the lease: key and record go at once.
 *
 * Store data is hostile: every value read goes through the wire codec's validation
 * (records.ts), the table is prototype-free and bounded by `maxServers`, and logs caused
 * by bad values are rate-limited.
 */
import type { Address, AppMessage, Checkpoint, HeartbeatMessage, JsonObject, JsonValue, Message } from '../protocol/messages';
import type { CoreEvent, Instant, LogLine, Outbound, ServerRecord } from '../core/types';
import { SkippedSeqs } from '../core/skipped';
import type { KeyValue, StoreOp, StoreResult, WatchBatch } from '../protocol/store';
import type { LeaseOutput } from './types';
import * as records from './records';

export interface LeaseElectionOptions {
  hostname: string;
  /** The address peers send messages to (registered in our record). */
  ip: string;
  /** The UDP port peers send messages to; 0: none. */
  port: number;
  /** Random per process (hex, 8 to 64 digits). */
  instanceId: string;
  /** Key prefix of this cluster in the store (ends with "/"). */
  prefix: string;
  tickMs: number;
  checkBeats: number;
  /** Lease TTL asked for, whole seconds (the store may grant more; we use what it grants). */
  ttlSeconds: number;
  eligible?: boolean;
  data?: JsonObject;
  priority?: number;
  maxServers?: number;
  /** Largest stored value read (and record written), bytes. @default 32768 */
  maxPacketBytes?: number;
  /** Largest `data` accepted in a record, bytes of JSON; 0: only maxPacketBytes. */
  maxDataBytes?: number;
}

type Role = 'none' | 'slave' | 'master';

interface Member {
  record: ServerRecord;
  iid: string;
  lease: string;
  port: number;
  /** Its key exists in the store (false: a locked record kept after its key went). */
  present: boolean;
  /** Monotonic ms of its last record (for uptime). */
  heardAt: number;
  reportedUptime: number;
  seq: number;
  skipped: SkippedSeqs;
}

interface MasterView {
  hostname: string;
  iid: string;
  term: number;
  lease: string;
}

interface Pending {
  type: StoreOp['type'];
  /** Which lease it belongs to: results for an abandoned lease are void. */
  epoch: number;
  sentAt: number;
  /** For puts: which key. */
  what?: 'record' | 'promote' | 'resign' | 'checkpoint' | 'abandoned';
}

const DEFAULT_MAX_SERVERS = 1000;
const DEFAULT_MAX_PACKET_BYTES = 32768;
/** Bad store values are logged at most once per this many ms (each a symptom of one writer). */
const BAD_VALUE_LOG_MS = 60_000;

/**
 * How long before the lease's earliest possible expiry at the store we stop acting as
 * master: a tenth of the TTL, at least 100 ms. It covers our timers firing late (the event
 * loop busy) and the store's clock running a little faster than ours.
 */
export function safetyMarginMs(ttlMs: number): number {
  return Math.min(ttlMs / 3, Math.max(100, ttlMs / 10));
}

export class LeaseElection {
  readonly hostname: string;
  readonly instanceId: string;
  readonly keys: records.Keys;
  /** hostname → record, self included; prototype-free, as the UDP core's. Apps read copies (`table`). */
  readonly #rows: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;
  /** Rows changed since the last takeChanged(). */
  #changed = new Set<string>();

  #ip: string;
  #port: number;
  #tickMs: number;
  #checkBeats: number;
  #ttlSeconds: number;
  #priority: number;
  #maxServers: number;
  #limits: records.Limits;
  #self: ServerRecord;
  #members = new Map<string, Member>();

  #role: Role = 'none';
  #masterHostname = '';
  #term = 0;
  #checkpoint: Checkpoint | null = null;
  #started = false;
  #stopped = false;
  #startedAt = 0;
  #listenUntil = Infinity;
  #settled = false;

  #lease: { id: string; ttlMs: number; validUntil: number } | null = null;
  /** Counts abandoned leases; results of ops sent under an older epoch are void. */
  #epoch = 0;
  #granting = false;
  #nextGrantAt = 0;
  #keepAliveInFlight = false;
  #nextKeepAliveAt = Infinity;
  #registered = false;
  #recordInFlight = false;
  #lastRecordText = '';
  #recordDueAt = Infinity;
  #nextRecordCheckAt = Infinity;
  #synced = false;
  #syncInFlight = false;
  #nextSyncAt = Infinity;
  #syncRevision = 0;
  #watchId: number | null = null;
  #watchStartedAt = -Infinity;

  #master: MasterView | null = null;
  #noMasterSince = 0;
  #campaignInFlight = false;
  #nextCampaignAt = 0;
  /** The last term we held: a key of ours with this term or older is one we gave up, never to be adopted. */
  #heldTerm = 0;
  /** Leases we abandoned, revoked until the store confirms (so their keys go as soon as it is back). */
  #abandoned: string[] = [];
  #revokeInFlight = false;
  #nextRevokeAt = Infinity;
  /** Resign again at this time: our key outlived a failed resign. */
  #resignDueAt = Infinity;
  #handoff: { target: string; until: number; stepDown: boolean } | null = null;
  #promoteUntil = Infinity;
  /** promote() with no master: campaign at once, whatever the rank. */
  #claimNow = false;

  #pending = new Map<number, Pending>();
  #opId = 0;
  #seq = 0;
  #lastMembers = '';
  #reportMembersSoon = false;
  #badValueLogAt = -Infinity;
  #duplicateLogAt = -Infinity;
  #badValues = 0;
  #out: LeaseOutput = emptyOutput();

  constructor(options: LeaseElectionOptions) {
    this.hostname = options.hostname;
    this.instanceId = options.instanceId;
    this.keys = records.keysFor(options.prefix);
    this.#ip = options.ip;
    this.#port = options.port;
    this.#tickMs = options.tickMs;
    this.#checkBeats = options.checkBeats;
    this.#ttlSeconds = options.ttlSeconds;
    this.#priority = options.priority ?? 0;
    this.#maxServers = options.maxServers ?? DEFAULT_MAX_SERVERS;
    this.#limits = { maxBytes: options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES, maxDataBytes: options.maxDataBytes ?? 0 };
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
    this.#rows[this.hostname] = this.#self;
  }

  // ---- read-only state -------------------------------------------------------------

  /** The whole table as copies, self first; changing them changes nothing here. */
  get table(): Record<string, ServerRecord> {
    const table = Object.create(null) as Record<string, ServerRecord>;
    table[this.hostname] = { ...this.#self };
    for (const [hostname, record] of Object.entries(this.#rows)) if (hostname !== this.hostname) table[hostname] = { ...record };
    return table;
  }

  /** A copy of one row (self included), or undefined. */
  record(hostname: string): ServerRecord | undefined {
    const record = this.#rows[hostname];
    return record ? { ...record } : undefined;
  }

  /** Hostnames whose row changed (added, updated or removed) since the last call. */
  takeChanged(): Set<string> {
    const changed = this.#changed;
    this.#changed = new Set();
    return changed;
  }

  /** Master as of the last step. Use `isMasterAt(now)` where the time is at hand. */
  get master(): boolean {
    return this.#role === 'master';
  }
  /** Master now: the role, and the lease still certainly alive at the store. */
  isMasterAt(now: Instant): boolean {
    return this.#role === 'master' && this.#lease !== null && now.mono < this.#lease.validUntil;
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
  get term(): number {
    return this.#term;
  }
  get priority(): number {
    return this.#priority;
  }
  get checkpoint(): JsonValue | null {
    return this.#checkpoint?.d ?? null;
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
  /** The lease we hold (decimal id), or null. */
  get lease(): string | null {
    return this.#lease?.id ?? null;
  }
  /** Monotonic ms until which we may act as master on the current lease (-Infinity: no lease). */
  get leaseValidUntil(): number {
    return this.#lease?.validUntil ?? -Infinity;
  }
  /** The lease TTL in use (granted), or the one asked for before the first grant, ms. */
  get ttlMs(): number {
    return this.#lease?.ttlMs ?? this.#ttlSeconds * 1000;
  }
  /** In touch with the store: a lease, our record registered, the members read and watched. */
  get connected(): boolean {
    return this.#lease !== null && this.#registered && this.#synced;
  }
  get size(): number {
    return Object.keys(this.#rows).length;
  }
  /** Where `hostname` takes messages (from its record), or null. */
  addressOf(hostname: string): Address | null {
    const member = this.#members.get(hostname);
    if (!member || !member.present || member.port === 0 || member.record.ip === '') return null;
    return { address: member.record.ip, port: member.port };
  }
  /** Instance id of the process registered as `hostname` (ours for our own). */
  instanceOf(hostname: string): string | undefined {
    return hostname === this.hostname ? this.instanceId : this.#members.get(hostname)?.iid;
  }
  /** Live eligible servers (self included when eligible), sorted: the set keys are split over. */
  eligibleMembers(_now?: Instant): string[] {
    const members = this.#self.eligible ? [this.hostname] : [];
    for (const [hostname, member] of this.#members) {
      if (member.present && member.record.eligible) members.push(hostname);
    }
    return members.sort();
  }

  // ---- inputs ----------------------------------------------------------------------

  /** Begin: take a lease; once it is ours, register, read the cluster and watch it. */
  start(now: Instant): LeaseOutput {
    if (this.#started) return this.#flush(now);
    this.#started = true;
    this.#startedAt = now.mono;
    this.#noMasterSince = now.mono;
    this.#nextRecordCheckAt = now.mono + this.#tickMs;
    this.#reportMembersSoon = true;
    this.#self.now = now.wall / 1000;
    this.#log(4, `Coordinator: asking the store for a lease of ${this.#ttlSeconds} s under ${this.keys.prefix}`);
    this.#requestGrant(now);
    return this.#flush(now);
  }

  /** Time passed: keep-alives, retries, deadlines, the rate-limited record update. */
  tick(now: Instant): LeaseOutput {
    if (!this.#active) return this.#flush(now);
    this.#checkDeadline(now);
    this.#expireRequests(now);
    if (!this.#lease && !this.#granting && now.mono >= this.#nextGrantAt) this.#requestGrant(now);
    const lease = this.#lease;
    if (lease && !this.#keepAliveInFlight && now.mono >= this.#nextKeepAliveAt) {
      this.#keepAliveInFlight = true;
      this.#nextKeepAliveAt = Infinity;
      this.#op({ type: 'keepAlive', id: 0, lease: lease.id, timeoutMs: this.#opTimeoutMs }, now);
    }
    if (lease && !this.#synced && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
    if (now.mono >= this.#nextRecordCheckAt) {
      this.#nextRecordCheckAt = now.mono + this.#tickMs;
      // `data` may have been changed in place: compare what we would write with what we wrote.
      if (this.#recordText() !== this.#lastRecordText) this.#recordDueAt = Math.min(this.#recordDueAt, now.mono);
      if (this.#synced) {
        for (const member of this.#members.values()) {
          if (member.present) member.record.now = now.wall / 1000;
        }
        this.#self.now = now.wall / 1000;
      }
    }
    if (lease && !this.#recordInFlight && now.mono >= this.#recordDueAt) this.#putRecord(now);
    this.#revokeAbandoned(now);
    if (now.mono >= this.#resignDueAt) {
      this.#resignDueAt = Infinity;
      const master = this.#master;
      if (lease && master && master.iid === this.instanceId && this.#role !== 'master') this.#resignKey(master.term, now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** The result of store op `id`. */
  onResult(id: number, result: StoreResult, now: Instant): LeaseOutput {
    const pending = this.#pending.get(id);
    if (!pending) return this.#flush(now);
    this.#pending.delete(id);
    if (this.#stopped) {
      // A lease granted after we stopped would hold nothing, but must not linger either.
      if (result.type === 'grant') this.#op({ type: 'revoke', id: 0, lease: result.lease, timeoutMs: this.#opTimeoutMs }, now);
      return this.#flush(now);
    }
    this.#checkDeadline(now);
    const current = pending.epoch === this.#epoch;
    if (result.type === 'error') {
      this.#failed(pending, result.error, current, now);
    } else {
      this.#succeeded(pending, result, current, now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** Changes seen by watch `id`, in revision order. */
  onWatch(id: number, batch: WatchBatch, now: Instant): LeaseOutput {
    if (!this.#active || id !== this.#watchId) return this.#flush(now);
    this.#checkDeadline(now);
    if (id !== this.#watchId) return this.#flush(now); // the deadline ended the watch
    for (const event of batch.events) {
      if (event.kv.modRevision <= this.#syncRevision) continue; // already in what we read
      this.#apply(event.kv.key, event.type === 'put' ? event.kv : null, now);
    }
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** Watch `id` broke (connection lost, history compacted): read everything again. */
  onWatchLost(id: number, reason: string, now: Instant): LeaseOutput {
    if (!this.#active || id !== this.#watchId) return this.#flush(now);
    this.#log(3, `Coordinator: watch lost (${reason}); reading the cluster again`);
    this.#watchId = null;
    this.#synced = false;
    // A watch that breaks as soon as it is made (a member refusing watches) must not become a busy loop of reads.
    this.#nextSyncAt = now.mono - this.#watchStartedAt < this.#retryMs ? now.mono + this.#retryMs : now.mono;
    this.#checkDeadline(now);
    if (this.#lease && !this.#syncInFlight && now.mono >= this.#nextSyncAt) this.#requestSync(now);
    return this.#flush(now);
  }

  /** A validated datagram arrived (only application messages mean anything here). */
  receive(message: Message, from: Address, now: Instant): LeaseOutput {
    if (!this.#active) return this.#flush(now);
    this.#checkDeadline(now);
    if (message.action !== 'message' || message.hostname === this.hostname) return this.#flush(now);
    const member = this.#members.get(message.hostname);
    if (!member || !member.present || message.iid !== member.iid || message.seq === undefined) {
      this.#log(9, `Ignoring a message from ${message.hostname} (${from.address}): not a registered member`);
      return this.#flush(now);
    }
    if (message.seq <= member.seq) {
      if (!member.skipped.take(message.seq, now.mono)) {
        this.#out.dropped = 'stale';
        return this.#flush(now);
      }
    } else {
      member.skipped.note(member.seq, message.seq, now.mono, now.mono + this.tockMs);
      member.seq = message.seq;
    }
    if (message.to !== '*' && message.to !== this.hostname) return this.#flush(now);
    this.#event({
      type: 'message',
      from: message.hostname,
      to: message.to,
      messageType: message.type,
      payload: message.payload,
      ...(message.rid !== undefined ? { rid: message.rid } : {}),
      ...(message.re !== undefined ? { re: message.re } : {}),
    });
    return this.#flush(now);
  }

  /** An application message, by UDP, to the address `to` registered (or to every member for '*'). */
  sendMessage(to: string, messageType: string, payload: JsonValue, now: Instant, ids: { rid?: string; re?: string } = {}): LeaseOutput {
    if (!this.#active) return this.#flush(now);
    const message: AppMessage = { action: 'message', hostname: this.hostname, to, type: messageType, payload, iid: this.instanceId, seq: ++this.#seq };
    if (ids.rid !== undefined) message.rid = ids.rid;
    if (ids.re !== undefined) message.re = ids.re;
    const targets = to === '*' ? [...this.#members.keys()] : [to];
    for (const hostname of targets) {
      const address = this.addressOf(hostname);
      if (address) this.#out.send.push({ message, to: address } satisfies Outbound);
      else if (to !== '*') this.#log(3, `Cannot send to ${hostname}: no registered address`);
    }
    return this.#flush(now);
  }

  /** Master only: store a checkpoint, fenced by our term, so the next master resumes from it. */
  setCheckpoint(data: JsonValue, now: Instant): LeaseOutput | null {
    if (!this.#active) return null;
    this.#checkDeadline(now);
    if (this.#role !== 'master' || !this.#lease) return null;
    const version = this.#checkpoint && this.#checkpoint.t === this.#term ? this.#checkpoint.v + 1 : 1;
    this.#checkpoint = { t: this.#term, v: version, d: data };
    const value = records.encodeCheckpoint(this.hostname, this.#checkpoint);
    this.#op({ type: 'fenced', id: 0, fenceKey: this.keys.master, term: this.#term, put: { key: this.keys.checkpoint, value, lease: '0' }, timeoutMs: this.#opTimeoutMs }, now, 'checkpoint');
    return this.#flush(now);
  }

  setEligible(eligible: boolean, now: Instant): LeaseOutput {
    if (this.#self.eligible === eligible) return this.#flush(now);
    this.#self.eligible = eligible;
    this.#changed.add(this.hostname);
    this.#reportMembersSoon = true;
    this.#log(4, `Eligibility changed: we are ${eligible ? 'now' : 'no longer'} eligible to be master`);
    if (!this.#active) return this.#flush(now);
    this.#checkDeadline(now);
    if (!eligible && this.#role === 'master') {
      const target = this.#bestPeer();
      if (target) this.#handOff(target, false, now);
      else this.#resign('we are no longer eligible', now);
    }
    this.#recordDueAt = now.mono; // announce at once
    if (this.#lease && !this.#recordInFlight) this.#putRecord(now);
    this.#evaluate(now);
    return this.#flush(now);
  }

  /** Replace the user data object; it reaches the store at most once a tick. */
  setData(data: JsonObject): void {
    this.#self.data = data;
    this.#changed.add(this.hostname);
  }

  /** The application locks (or unlocks) a record: a locked server is never removed, only marked gone. */
  setLocked(hostname: string, locked: boolean, now: Instant): LeaseOutput {
    const member = this.#members.get(hostname);
    if (member && member.record.locked !== locked) {
      member.record.locked = locked;
      this.#changed.add(hostname);
      if (!locked && !member.present) this.#removeMember(hostname, member);
    }
    return this.#flush(now);
  }

  /** A config reload: new timings (a new TTL applies from the next lease). */
  setTiming(timing: { tickMs: number; checkBeats: number; ttlSeconds?: number }, now: Instant): LeaseOutput {
    this.#tickMs = timing.tickMs;
    this.#checkBeats = timing.checkBeats;
    if (timing.ttlSeconds !== undefined) this.#ttlSeconds = timing.ttlSeconds;
    this.#nextRecordCheckAt = Math.min(this.#nextRecordCheckAt, now.mono + this.#tickMs);
    if (this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  setPolicy(policy: { priority: number }, now: Instant): LeaseOutput {
    if (policy.priority !== this.#priority) {
      this.#priority = policy.priority;
      this.#self.priority = policy.priority;
      this.#changed.add(this.hostname);
      this.#recordDueAt = now.mono;
      if (this.#active && this.#lease && !this.#recordInFlight) this.#putRecord(now);
    }
    if (this.#active) this.#evaluate(now);
    return this.#flush(now);
  }

  /** Hand the role to the next member in rank: delete our key and name it, in one fenced transaction. */
  stepDown(now: Instant): LeaseOutput {
    if (this.#active) this.#checkDeadline(now);
    if (!this.#active || this.#role !== 'master') {
      this.#event({ type: 'stepdown', ok: false, hostname: '', reason: 'this server is not master' });
      return this.#flush(now);
    }
    const target = this.#bestPeer();
    if (!target) {
      this.#event({ type: 'stepdown', ok: false, hostname: '', reason: 'no other eligible server to hand off to' });
      return this.#flush(now);
    }
    this.#handOff(target, true, now);
    return this.#flush(now);
  }

  /** Ask to become master: the master hands over (it watches our request); with none, campaign now. */
  promote(now: Instant): LeaseOutput {
    const fail = (reason: string): LeaseOutput => {
      this.#event({ type: 'promote', ok: false, reason });
      return this.#flush(now);
    };
    if (!this.#active) return fail('this server is not running');
    this.#checkDeadline(now);
    if (this.#role === 'master') {
      this.#event({ type: 'promote', ok: true, reason: 'already master' });
      return this.#flush(now);
    }
    if (!this.#self.eligible) return fail('this server is not eligible');
    const lease = this.#lease;
    if (!lease || !this.#synced) return fail('not in contact with the coordinator');
    this.#promoteUntil = now.mono + this.#handoffWindowMs;
    const master = this.#master;
    if (master && master.iid !== this.instanceId) {
      this.#log(4, `Asking ${master.hostname || 'the master'} to hand the master role to us`);
      this.#op({ type: 'put', id: 0, key: this.keys.promote, value: records.encodePromote(this.hostname, this.instanceId, master.term), lease: lease.id, timeoutMs: this.#opTimeoutMs }, now, 'promote');
    } else {
      this.#log(4, 'Promoted with no master in place: campaigning now');
      this.#handoff = null;
      this.#claimNow = true;
      this.#settled = true;
      this.#evaluate(now);
    }
    return this.#flush(now);
  }

  /** Leave: revoking the lease deletes our record and (if we are master) the election key at once. */
  shutdown(now: Instant): LeaseOutput {
    if (this.#stopped) return this.#flush(now);
    this.#stopped = true;
    if (this.#watchId !== null) this.#out.store.push({ type: 'unwatch', id: this.#watchId });
    this.#watchId = null;
    const lease = this.#lease;
    if (lease) {
      this.#op({ type: 'revoke', id: 0, lease: lease.id, timeoutMs: this.#opTimeoutMs }, now);
      this.#log(4, 'Coordinator: revoking our lease (our record and any election key of ours go with it)');
    }
    this.#lease = null;
    this.#role = 'none';
    this.#self.master = false;
    return this.#flush(now);
  }

  get #active(): boolean {
    return this.#started && !this.#stopped;
  }

  // ---- lease ---------------------------------------------------------------------------

  /** Ops time out before the next keep-alive is due, so a hung one is retried in time. */
  get #opTimeoutMs(): number {
    return Math.max(50, this.ttlMs / 3);
  }

  get #retryMs(): number {
    return Math.max(50, Math.min(this.ttlMs / 6, 1000));
  }

  /**
   * How long a handoff or a promote request may take: a tock, as in the UDP core, but never
   * less than a TTL: it takes three store round trips (request, resign, campaign), and with a
   * short tick a slow store needs more than a tock for them.
   */
  get #handoffWindowMs(): number {
    return Math.max(this.tockMs, this.ttlMs);
  }

  /** Without a master for this long, anyone eligible campaigns, whatever the rank. */
  get #patienceMs(): number {
    return Math.max(this.ttlMs, this.tockMs);
  }

  #requestGrant(now: Instant): void {
    this.#granting = true;
    this.#op({ type: 'grant', id: 0, ttlSeconds: this.#ttlSeconds, timeoutMs: this.#opTimeoutMs }, now);
  }

  #requestSync(now: Instant): void {
    this.#syncInFlight = true;
    this.#nextSyncAt = Infinity;
    this.#op({ type: 'sync', id: 0, prefix: this.keys.prefix, timeoutMs: this.#opTimeoutMs }, now);
  }

  /**
   * Every input comes here first: past the deadline our lease may be gone at the store, and
   * with it our key, so someone else may be master. Step down before anything else happens.
   */
  #checkDeadline(now: Instant): void {
    const lease = this.#lease;
    if (lease && now.mono >= lease.validUntil) this.#loseLease(now, `no keep-alive acknowledged within ${Math.round(lease.ttlMs - safetyMarginMs(lease.ttlMs))} ms`);
  }

  /** Our lease is gone or may be: forget it (revoke it, in case it is not) and start over with a new one. */
  #loseLease(now: Instant, reason: string): void {
    const lease = this.#lease;
    this.#lease = null;
    this.#epoch++;
    this.#registered = false;
    this.#synced = false;
    this.#keepAliveInFlight = false;
    this.#recordInFlight = false;
    this.#syncInFlight = false;
    this.#campaignInFlight = false;
    this.#nextKeepAliveAt = Infinity;
    this.#recordDueAt = now.mono;
    this.#log(2, `Coordinator: lost our lease: ${reason}`);
    if (this.#role === 'master') this.#relinquish(`our lease may have expired (${reason})`);
    if (this.#watchId !== null) this.#out.store.push({ type: 'unwatch', id: this.#watchId });
    this.#watchId = null;
    // Out of touch, we cannot know who is master.
    this.#forgetMaster();
    this.#noMasterSince = Infinity; // unknown until we read the store again
    this.#setMasterHostname('');
    this.#claimNow = false;
    this.#resignDueAt = Infinity;
    if (lease) {
      this.#abandoned.push(lease.id);
      if (this.#abandoned.length > 4) this.#abandoned.shift();
      this.#nextRevokeAt = now.mono;
      this.#revokeAbandoned(now);
    }
    this.#granting = false;
    this.#nextGrantAt = now.mono;
    this.#requestGrant(now);
  }

  #failed(pending: Pending, error: string, current: boolean, now: Instant): void {
    const retryAt = now.mono + this.#retryMs;
    switch (pending.type) {
      case 'grant':
        this.#granting = false;
        this.#nextGrantAt = retryAt;
        this.#log(3, `Coordinator: lease grant failed (${error}); retrying`);
        return;
      case 'keepAlive':
        if (!current) return;
        this.#keepAliveInFlight = false;
        this.#nextKeepAliveAt = retryAt;
        this.#log(3, `Coordinator: keep-alive failed (${error})`);
        return;
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        this.#nextSyncAt = retryAt;
        this.#log(3, `Coordinator: reading the cluster failed (${error}); retrying`);
        return;
      case 'put':
        if (current && pending.what === 'record') {
          this.#recordInFlight = false;
          this.#recordDueAt = retryAt;
        }
        return;
      case 'campaign':
        if (!current) return;
        // It may have gone through: the watch will show our key, and we adopt it then.
        this.#campaignInFlight = false;
        this.#nextCampaignAt = retryAt;
        return;
      case 'revoke':
        if (pending.what === 'abandoned') {
          this.#revokeInFlight = false;
          this.#nextRevokeAt = retryAt;
        }
        return;
      case 'fenced':
        // Our key must not outlive a resign that failed: try again while the store shows it.
        if (current && pending.what === 'resign') this.#resignDueAt = Math.min(this.#resignDueAt, retryAt);
        return;
      default:
        return;
    }
  }

  #succeeded(pending: Pending, result: Exclude<StoreResult, { type: 'error' }>, current: boolean, now: Instant): void {
    switch (result.type) {
      case 'grant': {
        this.#granting = false;
        const ttlMs = result.ttlSeconds * 1000;
        const validUntil = pending.sentAt + ttlMs - safetyMarginMs(ttlMs);
        if (this.#lease || !(ttlMs > 0) || now.mono >= validUntil) {
          // A grant we no longer need, or one so slow that it is already past its safe use.
          this.#op({ type: 'revoke', id: 0, lease: result.lease, timeoutMs: this.#opTimeoutMs }, now);
          if (!this.#lease) this.#nextGrantAt = now.mono;
          return;
        }
        this.#lease = { id: result.lease, ttlMs, validUntil };
        this.#nextKeepAliveAt = pending.sentAt + ttlMs / 3;
        this.#log(4, `Coordinator: lease ${result.lease} granted, TTL ${result.ttlSeconds} s`);
        this.#recordDueAt = now.mono;
        this.#putRecord(now);
        this.#requestSync(now);
        return;
      }
      case 'keepAlive': {
        if (!current) return;
        this.#keepAliveInFlight = false;
        const lease = this.#lease;
        if (!lease) return;
        if (result.ttlSeconds <= 0) {
          this.#loseLease(now, 'the store no longer knows it');
          return;
        }
        const ttlMs = result.ttlSeconds * 1000;
        lease.validUntil = Math.max(lease.validUntil, pending.sentAt + ttlMs - safetyMarginMs(ttlMs));
        this.#nextKeepAliveAt = Math.max(now.mono, pending.sentAt + lease.ttlMs / 3);
        return;
      }
      case 'put':
        if (current && pending.what === 'record') {
          this.#recordInFlight = false;
          this.#registered = true;
        }
        return;
      case 'revoke':
        if (pending.what === 'abandoned') {
          // Revoked, or unknown to the store (expired): either way its keys are gone.
          this.#revokeInFlight = false;
          this.#abandoned.shift();
          this.#nextRevokeAt = now.mono;
          this.#revokeAbandoned(now);
        }
        return;
      case 'sync':
        if (!current) return;
        this.#syncInFlight = false;
        this.#applySync(result.kvs, result.revision, now);
        return;
      case 'campaign': {
        if (current) this.#campaignInFlight = false;
        if (result.won) {
          if (this.#heldTerm === result.revision) return; // the watch showed it first: already master
          if (current && this.#active && this.#self.eligible && this.#role !== 'master' && this.#lease && now.mono < this.#lease.validUntil) {
            this.#becomeMaster(result.revision, now);
          } else if (current) {
            // Won, but no longer wanted (made ineligible meanwhile): give it back.
            this.#resignKey(result.revision, now);
          }
          return;
        }
        if (current && result.holder) this.#apply(this.keys.master, result.holder, now);
        if (current) this.#nextCampaignAt = now.mono + this.#retryMs;
        return;
      }
      default:
        return;
    }
  }

  // ---- what the store says -------------------------------------------------------------

  #applySync(kvs: KeyValue[], revision: number, now: Instant): void {
    const seen = new Set<string>();
    let master: KeyValue | null = null;
    for (const kv of kvs) {
      if (kv.key === this.keys.master) {
        master = kv;
        continue;
      }
      if (kv.key.startsWith(this.keys.members)) seen.add(kv.key.slice(this.keys.members.length));
      this.#apply(kv.key, kv, now, true);
    }
    // Members that are gone from the store went while we were not watching.
    for (const [hostname, member] of this.#members) {
      if (member.present && !seen.has(hostname)) this.#removeMember(hostname, member);
    }
    if (this.#registered && !seen.has(this.hostname)) this.#recordDueAt = now.mono;
    this.#apply(this.keys.master, master, now, true);
    this.#syncRevision = revision;
    this.#synced = true;
    // Servers that start within a tick of each other elect by rank, not by who reached the
    // store first: the first time we see the cluster, we listen a tick before campaigning.
    if (this.#listenUntil === Infinity) this.#listenUntil = now.mono + this.#tickMs;
    this.#settled ||= now.mono >= this.#listenUntil;
    const watchId = ++this.#opId;
    this.#watchId = watchId;
    this.#watchStartedAt = now.mono;
    this.#out.store.push({ type: 'watch', id: watchId, prefix: this.keys.prefix, fromRevision: revision + 1, timeoutMs: this.#opTimeoutMs });
  }

  /** One key changed (kv), or was deleted (null). */
  #apply(key: string, kv: KeyValue | null, now: Instant, fromSync = false): void {
    const keys = this.keys;
    if (key === keys.master) {
      this.#setMaster(kv, now);
    } else if (key.startsWith(keys.members)) {
      const hostname = key.slice(keys.members.length);
      if (kv) this.#putMember(hostname, kv, now);
      else this.#deleteMember(hostname, now);
    } else if (key === keys.checkpoint) {
      if (!kv) return;
      const checkpoint = records.decodeCheckpoint(kv.value, this.#limits);
      if (!checkpoint) return this.#badValue(key, now);
      const known = this.#checkpoint;
      if (!known || checkpoint.t > known.t || (checkpoint.t === known.t && checkpoint.v > known.v)) this.#checkpoint = checkpoint;
    } else if (key === keys.handoff) {
      if (!kv || fromSync) return; // a handoff read at start is history: its moment has passed
      const handoff = records.decodeHandoff(kv.value, this.#limits);
      if (!handoff) return this.#badValue(key, now);
      this.#log(4, `${handoff.from} hands the master role to ${handoff.target}`);
      const mine = this.#handoff?.stepDown === true && this.#handoff.target === handoff.target;
      this.#handoff = { target: handoff.target, until: now.mono + this.#handoffWindowMs, stepDown: mine };
      this.#settled = true;
    } else if (key === keys.promote) {
      if (!kv || fromSync) return;
      const request = records.decodePromote(kv.value, this.#limits);
      if (!request) return this.#badValue(key, now);
      this.#receivePromote(request, now);
    }
  }

  #forgetMaster(): void {
    const previous = this.#master;
    this.#master = null;
    const record = previous?.hostname ? this.#rows[previous.hostname] : undefined;
    if (record && !record.self) record.master = false;
    if (previous?.hostname) this.#changed.add(previous.hostname);
  }

  /** Revoke the leases we abandoned, one at a time, until the store has them no more. */
  #revokeAbandoned(now: Instant): void {
    const lease = this.#abandoned[0];
    if (lease === undefined || this.#revokeInFlight || now.mono < this.#nextRevokeAt) return;
    this.#revokeInFlight = true;
    this.#nextRevokeAt = Infinity;
    this.#op({ type: 'revoke', id: 0, lease, timeoutMs: this.#opTimeoutMs }, now, 'abandoned');
  }

  #setMaster(kv: KeyValue | null, now: Instant): void {
    let view: MasterView | null = null;
    if (kv) {
      const parsed = records.decodeMaster(kv.value, this.#limits);
      if (!parsed) this.#badValue(kv.key, now);
      // An unreadable key still occupies the election: nobody can campaign while it exists.
      view = { hostname: parsed?.hostname ?? '', iid: parsed?.iid ?? '', term: kv.createRevision, lease: kv.lease };
      if (kv.createRevision > this.#term) this.#term = kv.createRevision;
    }
    const previous = this.#master;
    this.#master = view;
    if (previous && previous.hostname && previous.hostname !== view?.hostname) {
      const record = this.#rows[previous.hostname];
      if (record && !record.self) record.master = false;
      this.#changed.add(previous.hostname);
    }
    if (this.#role === 'master' && (!view || view.iid !== this.instanceId || view.term !== this.#self.term)) {
      this.#relinquish('our election key is gone from the store');
    }
    if (!view) {
      if (previous || this.#noMasterSince === Infinity) this.#noMasterSince = now.mono;
      this.#setMasterHostname('');
      return;
    }
    if (view.iid === this.instanceId) {
      if (this.#role === 'master') return;
      const lease = this.#lease;
      if (lease && view.lease === lease.id && this.#self.eligible && now.mono < lease.validUntil && view.term > this.#heldTerm) {
        // A campaign whose reply we lost went through: the key is ours, under our live lease.
        this.#becomeMaster(view.term, now);
      } else {
        this.#resignKey(view.term, now);
      }
      return;
    }
    const record = view.hostname ? this.#rows[view.hostname] : undefined;
    if (record && !record.self) {
      record.master = true;
      record.term = view.term;
      this.#changed.add(view.hostname);
    }
    this.#settled = true;
    if (view.hostname) this.#handoffDone(view.hostname);
    this.#setMasterHostname(view.hostname);
    this.#becomeSlave();
  }

  #putMember(hostname: string, kv: KeyValue, now: Instant): void {
    if (hostname === this.hostname) {
      const value = records.decodeMember(kv.value, hostname, this.#limits);
      if (value && value.heartbeat.iid !== this.instanceId && now.mono - this.#duplicateLogAt >= this.tockMs) {
        this.#duplicateLogAt = now.mono;
        this.#log(1, `DUPLICATE HOSTNAME: another process (instance ${value.heartbeat.iid}) registers as ${hostname}`);
      }
      return;
    }
    const value = records.decodeMember(kv.value, hostname, this.#limits);
    if (!value) return this.#badValue(kv.key, now);
    const hb: HeartbeatMessage = value.heartbeat;
    let member = this.#members.get(hostname);
    if (!member) {
      if (this.#members.size + 1 >= this.#maxServers) return this.#badValue(kv.key, now, `the table is full (${this.#maxServers})`);
      const record: ServerRecord = {
        hostname,
        ip: hb.ip,
        master: false,
        eligible: hb.eligible,
        self: false,
        now: now.wall / 1000,
        data: hb.data,
        uptime: hb.uptime,
        locked: false,
        priority: hb.prio ?? 0,
        term: 0,
      };
      member = { record, iid: hb.iid as string, lease: kv.lease, port: value.port, present: true, heardAt: now.mono, reportedUptime: hb.uptime, seq: -1, skipped: new SkippedSeqs() };
      this.#members.set(hostname, member);
      this.#rows[hostname] = record;
      if (this.#master?.hostname === hostname) {
        record.master = true;
        record.term = this.#master.term;
      }
      this.#log(5, `Server joined the cluster: ${hostname} (${hb.ip})`);
      this.#event({ type: 'addserver', server: record });
      return;
    }
    const record = member.record;
    this.#changed.add(hostname);
    if (member.iid !== hb.iid) {
      member.seq = -1;
      member.skipped.clear();
    }
    if (record.eligible !== hb.eligible) {
      this.#log(5, `Server ${hostname} is ${hb.eligible ? 'now' : 'no longer'} eligible`);
      this.#reportMembersSoon = true;
    }
    if (!member.present) this.#reportMembersSoon = true;
    member.present = true;
    member.iid = hb.iid as string;
    member.lease = kv.lease;
    member.port = value.port;
    member.heardAt = now.mono;
    member.reportedUptime = hb.uptime;
    record.ip = hb.ip;
    record.eligible = hb.eligible;
    record.data = hb.data;
    record.uptime = hb.uptime;
    record.priority = hb.prio ?? 0;
    record.now = now.wall / 1000;
  }

  #deleteMember(hostname: string, now: Instant): void {
    if (hostname === this.hostname) {
      // Our record went while our lease lives (a namesake's lease ended, or someone deleted it): put it back.
      if (this.#lease && this.#registered) this.#recordDueAt = Math.min(this.#recordDueAt, now.mono + this.#tickMs);
      return;
    }
    const member = this.#members.get(hostname);
    if (member && member.present) this.#removeMember(hostname, member);
  }

  #removeMember(hostname: string, member: Member): void {
    if (member.record.locked) {
      // Kept, being locked; but a server without a lease is master of nothing and counts for nothing.
      member.present = false;
      member.record.master = false;
      this.#changed.add(hostname);
      this.#reportMembersSoon = true;
      return;
    }
    this.#members.delete(hostname);
    delete this.#rows[hostname];
    this.#log(5, `Server left the cluster: ${hostname}`);
    this.#event({ type: 'deleteserver', server: member.record });
  }

  #receivePromote(request: { hostname: string; iid: string; term: number }, now: Instant): void {
    if (this.#role !== 'master' || request.term !== this.#term || request.hostname === this.hostname) return;
    const member = this.#members.get(request.hostname);
    if (!member || !member.present || member.iid !== request.iid || !member.record.eligible) {
      this.#log(4, `Ignoring promote request from ${request.hostname}: not a live eligible member`);
      return;
    }
    this.#log(4, `${request.hostname} asked for the master role: handing off`);
    this.#handOff(request.hostname, false, now);
  }

  #badValue(key: string, now: Instant, why = 'not a valid record'): void {
    this.#badValues++;
    if (now.mono - this.#badValueLogAt < BAD_VALUE_LOG_MS) return;
    this.#badValueLogAt = now.mono;
    this.#log(2, `Coordinator: ignoring ${JSON.stringify(key.slice(0, 200))} in the store: ${why} (${this.#badValues} so far)`);
  }

  // ---- the rules ------------------------------------------------------------------------

  #evaluate(now: Instant): void {
    this.#settled ||= now.mono >= this.#listenUntil;
    if (this.#mayCampaign(now)) {
      const lease = this.#lease as { id: string };
      this.#campaignInFlight = true;
      this.#log(5, 'Coordinator: no master; campaigning');
      this.#op(
        { type: 'campaign', id: 0, key: this.keys.master, value: records.encodeMaster(this.hostname, this.#ip, this.instanceId), lease: lease.id, alsoDelete: this.keys.handoff, timeoutMs: this.#opTimeoutMs },
        now,
      );
    }
  }

  #mayCampaign(now: Instant): boolean {
    if (!this.#active || !this.#self.eligible || this.#role === 'master' || this.#campaignInFlight) return false;
    if (!this.#lease || !this.#registered || !this.#synced || this.#master !== null || now.mono < this.#nextCampaignAt) return false;
    const handoff = this.#handoff;
    if (handoff && now.mono < handoff.until) {
      if (handoff.target === this.hostname) return !handoff.stepDown;
      const target = this.#members.get(handoff.target);
      if (target?.present) return false; // it campaigns, not us
    }
    if (this.#claimNow) return true;
    if (!this.#settled) return false;
    if (now.mono >= this.#noMasterSince + this.#patienceMs) return true;
    const best = this.#bestPeer();
    return best === null || this.#compare(this.hostname, best) < 0;
  }

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  #compare(a: string, b: string): number {
    const pa = a === this.hostname ? this.#priority : (this.#rows[a]?.priority ?? 0);
    const pb = b === this.hostname ? this.#priority : (this.#rows[b]?.priority ?? 0);
    if (pa !== pb) return pb - pa;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /** The registered eligible member (not us) that ranks first. */
  #bestPeer(): string | null {
    let best: string | null = null;
    for (const [hostname, member] of this.#members) {
      if (!member.present || !member.record.eligible) continue;
      if (best === null || this.#compare(hostname, best) < 0) best = hostname;
    }
    return best;
  }

  #handOff(target: string, stepDown: boolean, now: Instant): void {
    const lease = this.#lease;
    const term = this.#self.term;
    this.#handoff = { target, until: now.mono + this.#handoffWindowMs, stepDown };
    this.#relinquish(`handing off to ${target}`);
    if (!lease) return;
    this.#op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.keys.master,
        term,
        deleteKey: this.keys.master,
        put: { key: this.keys.handoff, value: records.encodeHandoff(this.hostname, this.instanceId, target, term), lease: lease.id },
        timeoutMs: this.#opTimeoutMs,
      },
      now,
      'resign',
    );
  }

  #resign(reason: string, now: Instant): void {
    const term = this.#self.term;
    this.#relinquish(reason);
    this.#resignKey(term, now);
  }

  /** Delete the election key of `term` if it is still there (ours, no longer wanted). */
  #resignKey(term: number, now: Instant): void {
    this.#op({ type: 'fenced', id: 0, fenceKey: this.keys.master, term, deleteKey: this.keys.master, timeoutMs: this.#opTimeoutMs }, now, 'resign');
  }

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
      this.#log(4, `Handoff to ${handoff.target} did not complete within ${Math.round(this.#handoffWindowMs)} ms; electing as usual`);
      if (handoff.stepDown) this.#event({ type: 'stepdown', ok: false, hostname: handoff.target, reason: `${handoff.target} did not take over within ${Math.round(this.#handoffWindowMs)} ms` });
    }
    if (now.mono >= this.#promoteUntil) {
      this.#promoteUntil = Infinity;
      this.#claimNow = false;
      if (this.#role !== 'master') this.#event({ type: 'promote', ok: false, reason: `the master did not hand over within ${Math.round(this.#handoffWindowMs)} ms` });
    }
  }

  #becomeMaster(term: number, now: Instant): void {
    this.#role = 'master';
    this.#self.master = true;
    if (term > this.#term) this.#term = term;
    this.#self.term = term;
    this.#heldTerm = term;
    this.#master = { hostname: this.hostname, iid: this.instanceId, term, lease: this.#lease?.id ?? '0' };
    this.#claimNow = false;
    this.#handoffDone(this.hostname);
    this.#setMasterHostname(this.hostname);
    this.#log(4, `We are now the master server (term ${term})`, { servers: Object.keys(this.#rows).sort() });
    this.#event({ type: 'master', term, checkpoint: this.checkpoint });
    if (this.#promoteUntil !== Infinity) {
      this.#promoteUntil = Infinity;
      this.#event({ type: 'promote', ok: true, reason: `master with term ${term}` });
    }
    void now;
  }

  #becomeSlave(): void {
    if (this.#role === 'slave') return;
    this.#role = 'slave';
    this.#self.master = false;
    this.#log(4, `We are now a slave server (master: ${this.#masterHostname})`);
    this.#event({ type: 'slave' });
  }

  #relinquish(reason: string): void {
    this.#log(4, `We are relinquishing master control: ${reason}`);
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

  // ---- output ------------------------------------------------------------------------------

  #recordText(): string {
    const self = this.#self;
    // Uptime is left out of the comparison: it alone would mean a write every tick.
    return records.encodeMember({ hostname: this.hostname, ip: this.#ip, eligible: self.eligible, uptime: 0, data: self.data, iid: this.instanceId, priority: this.#priority, port: this.#port });
  }

  #putRecord(now: Instant): void {
    const lease = this.#lease;
    if (!lease) return;
    const self = this.#self;
    self.uptime = Math.max(0, Math.floor((now.mono - this.#startedAt) / 1000));
    let data = self.data;
    let value = records.encodeMember({ hostname: this.hostname, ip: this.#ip, eligible: self.eligible, uptime: self.uptime, data, iid: this.instanceId, priority: this.#priority, port: this.#port });
    const dataLimit = this.#limits.maxDataBytes || Infinity;
    if (Buffer.byteLength(value, 'utf8') > this.#limits.maxBytes || Buffer.byteLength(JSON.stringify(data), 'utf8') > dataLimit) {
      this.#log(1, 'Our record with its user data is over max_packet_bytes / max_data_bytes; storing it without data');
      data = {};
      value = records.encodeMember({ hostname: this.hostname, ip: this.#ip, eligible: self.eligible, uptime: self.uptime, data, iid: this.instanceId, priority: this.#priority, port: this.#port });
    }
    this.#lastRecordText = this.#recordText();
    this.#recordInFlight = true;
    // Data changes reach the store at most once a tick.
    this.#recordDueAt = Infinity;
    this.#nextRecordCheckAt = now.mono + this.#tickMs;
    this.#op({ type: 'put', id: 0, key: this.keys.members + this.hostname, value, lease: lease.id, timeoutMs: this.#opTimeoutMs }, now, 'record');
  }

  #op(op: StoreOp, now: Instant, what?: Pending['what']): void {
    const id = ++this.#opId;
    op.id = id;
    const pending: Pending = { type: op.type, epoch: this.#epoch, sentAt: now.mono };
    if (what) pending.what = what;
    this.#pending.set(id, pending);
    this.#out.store.push(op);
  }

  #event(event: CoreEvent): void {
    this.#out.events.push(event);
    if (event.type === 'addserver' || event.type === 'deleteserver') this.#changed.add(event.server.hostname);
    if (event.type === 'master' || event.type === 'slave') this.#changed.add(this.hostname);
    if (event.type === 'addserver' || event.type === 'deleteserver') this.#reportMembersSoon = true;
  }

  #log(level: number, message: string, data?: unknown): void {
    const line: LogLine = data === undefined ? { level, message } : { level, message, data };
    this.#out.logs.push(line);
  }

  #wakeAt(now: Instant): number {
    if (!this.#active) return Infinity;
    let wake = Math.min(this.#nextRecordCheckAt, this.#promoteUntil);
    const lease = this.#lease;
    if (lease) {
      wake = Math.min(wake, lease.validUntil);
      if (!this.#keepAliveInFlight) wake = Math.min(wake, this.#nextKeepAliveAt);
      if (!this.#synced && !this.#syncInFlight) wake = Math.min(wake, this.#nextSyncAt);
      if (!this.#recordInFlight) wake = Math.min(wake, this.#recordDueAt);
    } else if (!this.#granting) {
      wake = Math.min(wake, this.#nextGrantAt);
    }
    if (this.#handoff) wake = Math.min(wake, this.#handoff.until);
    if (this.#abandoned.length > 0 && !this.#revokeInFlight) wake = Math.min(wake, this.#nextRevokeAt);
    wake = Math.min(wake, this.#resignDueAt);
    if (this.#master === null && this.#self.eligible && this.#role !== 'master') {
      if (!this.#settled) wake = Math.min(wake, this.#listenUntil);
      if (this.#nextCampaignAt > now.mono) wake = Math.min(wake, this.#nextCampaignAt);
      const impatient = this.#noMasterSince + this.#patienceMs;
      if (impatient > now.mono) wake = Math.min(wake, impatient);
    }
    return Math.max(wake, now.mono);
  }

  #flush(now: Instant): LeaseOutput {
    if (this.#started && this.#reportMembersSoon) {
      this.#reportMembersSoon = false;
      const members = this.eligibleMembers();
      const joined = members.join('\n');
      if (joined !== this.#lastMembers) {
        this.#lastMembers = joined;
        this.#out.events.push({ type: 'members', members });
      }
    }
    const out = this.#out;
    out.wakeAt = this.#wakeAt(now);
    this.#out = emptyOutput();
    return out;
  }
}

function emptyOutput(): LeaseOutput {
  return { send: [], events: [], logs: [], wakeAt: Infinity, store: [] };
}
