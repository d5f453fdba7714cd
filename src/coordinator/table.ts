/**
 * The member table of the lease election: one row per record under `members/`, self
 * included. The store is the truth (a member is there while its lease lives); this is what
 * we last read of it, prototype-free and bounded by `maxServers`, as the UDP core's table.
 * A locked row outlives its key, marked absent: it counts for nothing and is master of
 * nothing. Values come through records.ts (the wire codec's validation); bad ones are
 * counted and logged at most once a minute.
 *
 * Not the UDP core's table (core/members.ts): that one judges liveness itself (deadlines per
 * lane, heard order, restarts and duplicates by instance); here the store's leases do, and a
 * row only mirrors a key. Both hold the same records (elector/types.ts) and rank alike.
 */
import type { Address } from '../protocol/messages';
import { healthOf, type Instant, type ServerRecord } from '../elector/types';
import { compareRank } from '../elector/rank';
import type { KeyValue } from '../protocol/store';
import { SkippedSeqs } from '../elector/seq';
import type { LeaseStep } from './step';
import * as records from './records';

export interface Member {
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
  /** Monotonic ms of its last datagram acted on (its sequence numbers count while it speaks). */
  seqHeardAt: number;
  skipped: SkippedSeqs;
}

/** Bad store values are logged at most once per this many ms (each a symptom of one writer). */
const BAD_VALUE_LOG_MS = 60_000;

export class LeaseTable {
  readonly hostname: string;
  readonly #instanceId: string;
  readonly #step: LeaseStep;
  readonly #maxServers: number;
  readonly #limits: records.Limits;
  /** hostname → record, self included; prototype-free, as the UDP core's. Apps read copies (`copy`). */
  readonly rows: Record<string, ServerRecord> = Object.create(null) as Record<string, ServerRecord>;
  /** Everyone but us, by hostname. */
  readonly members = new Map<string, Member>();
  readonly self: ServerRecord;
  /** Ours, for ranking (the self row carries it too). */
  priority: number;
  #badValueLogAt = -Infinity;
  #duplicateLogAt = -Infinity;
  #badValues = 0;

  constructor(
    options: {
      hostname: string;
      ip: string;
      instanceId: string;
      eligible: boolean;
      data: ServerRecord['data'];
      health: ServerRecord['health'];
      priority: number;
      maxServers: number;
      limits: records.Limits;
    },
    step: LeaseStep,
  ) {
    this.hostname = options.hostname;
    this.#instanceId = options.instanceId;
    this.#step = step;
    this.#maxServers = options.maxServers;
    this.#limits = options.limits;
    this.priority = options.priority;
    this.self = {
      hostname: options.hostname,
      ip: options.ip,
      master: false,
      eligible: options.eligible,
      self: true,
      now: 0,
      data: options.data,
      uptime: 0,
      locked: false,
      priority: options.priority,
      term: 0,
      health: options.health,
    };
    this.rows[this.hostname] = this.self;
  }

  /** The whole table as copies, self first; changing them changes nothing here. */
  copy(): Record<string, ServerRecord> {
    const table = Object.create(null) as Record<string, ServerRecord>;
    table[this.hostname] = { ...this.self };
    for (const [hostname, record] of Object.entries(this.rows)) if (hostname !== this.hostname) table[hostname] = { ...record };
    return table;
  }

  get size(): number {
    return Object.keys(this.rows).length;
  }

  /** Where `hostname` takes messages (from its record), or null. */
  addressOf(hostname: string): Address | null {
    const member = this.members.get(hostname);
    if (!member || !member.present || member.port === 0 || member.record.ip === '') return null;
    return { address: member.record.ip, port: member.port };
  }

  /** Live eligible servers (self included when eligible), sorted. */
  eligibleMembers(): string[] {
    const members = this.self.eligible ? [this.hostname] : [];
    for (const [hostname, member] of this.members) {
      if (member.present && member.record.eligible) members.push(hostname);
    }
    return members.sort();
  }

  /** Negative when `a` ranks before `b`: higher priority, then hostname in plain string order. */
  compare(a: string, b: string): number {
    const pa = a === this.hostname ? this.priority : (this.rows[a]?.priority ?? 0);
    const pb = b === this.hostname ? this.priority : (this.rows[b]?.priority ?? 0);
    return compareRank(a, pa, b, pb);
  }

  /** The registered eligible member (not us) that ranks first. */
  bestPeer(): string | null {
    let best: string | null = null;
    for (const [hostname, member] of this.members) {
      if (!member.present || !member.record.eligible) continue;
      if (best === null || this.compare(hostname, best) < 0) best = hostname;
    }
    return best;
  }

  /** The clock of every live row, refreshed once a tick while we follow the store. */
  stamp(now: Instant): void {
    for (const member of this.members.values()) {
      if (member.present) member.record.now = now.wall / 1000;
    }
    this.self.now = now.wall / 1000;
  }

  /**
   * Another server's record was written. `master`: the server the election key names, if
   * any. Returns the highest term the record carries (0 when none, or refused).
   */
  put(hostname: string, kv: KeyValue, now: Instant, master: { hostname: string; term: number } | null): number {
    const value = records.decodeMember(kv.value, hostname, this.#limits);
    if (!value) {
      this.badValue(kv.key, now);
      return 0;
    }
    const hb = value.heartbeat;
    let member = this.members.get(hostname);
    if (!member) {
      if (this.members.size + 1 >= this.#maxServers) {
        this.badValue(kv.key, now, `the table is full (${this.#maxServers})`);
        return 0;
      }
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
        term: hb.term ?? 0,
        health: healthOf(hb.health),
      };
      member = {
        record,
        iid: hb.iid as string,
        lease: kv.lease,
        port: value.port,
        present: true,
        heardAt: now.mono,
        reportedUptime: hb.uptime,
        seq: -1,
        seqHeardAt: -Infinity,
        skipped: new SkippedSeqs(),
      };
      this.members.set(hostname, member);
      this.rows[hostname] = record;
      if (master?.hostname === hostname) {
        record.master = true;
        record.term = Math.max(record.term, master.term);
      }
      this.#step.log(5, `Server joined the cluster: ${hostname} (${hb.ip})`);
      this.#step.event({ type: 'addserver', server: record });
      return hb.term ?? 0;
    }
    const record = member.record;
    this.#step.changed.add(hostname);
    if (member.iid !== hb.iid) {
      member.seq = -1;
      member.skipped.clear();
    }
    if (record.eligible !== hb.eligible) {
      this.#step.log(5, `Server ${hostname} is ${hb.eligible ? 'now' : 'no longer'} eligible`);
      this.#step.membersMayHaveChanged = true;
    }
    if (!member.present) this.#step.membersMayHaveChanged = true;
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
    record.term = Math.max(record.term, hb.term ?? 0);
    record.health = healthOf(hb.health);
    record.now = now.wall / 1000;
    return hb.term ?? 0;
  }

  /** Our own key was written: by us, or by another process with our hostname. */
  putOwn(kv: KeyValue, now: Instant, tockMs: number): void {
    const value = records.decodeMember(kv.value, this.hostname, this.#limits);
    if (value && value.heartbeat.iid !== this.#instanceId && now.mono - this.#duplicateLogAt >= tockMs) {
      this.#duplicateLogAt = now.mono;
      this.#step.log(1, `DUPLICATE HOSTNAME: another process (instance ${value.heartbeat.iid}) registers as ${this.hostname}`);
    }
  }

  /** `members/<hostname>` is gone (not ours). */
  delete(hostname: string): void {
    const member = this.members.get(hostname);
    if (member && member.present) this.remove(hostname, member);
  }

  remove(hostname: string, member: Member): void {
    if (member.record.locked) {
      // Kept, being locked; but a server without a lease is master of nothing and counts for nothing.
      member.present = false;
      member.record.master = false;
      this.#step.changed.add(hostname);
      this.#step.membersMayHaveChanged = true;
      return;
    }
    this.members.delete(hostname);
    delete this.rows[hostname];
    this.#step.log(5, `Server left the cluster: ${hostname}`);
    this.#step.event({ type: 'deleteserver', server: member.record });
  }

  /** The application locks (or unlocks) a record: a locked server is never removed, only marked gone. */
  setLocked(hostname: string, locked: boolean): void {
    const member = this.members.get(hostname);
    if (member && member.record.locked !== locked) {
      member.record.locked = locked;
      this.#step.changed.add(hostname);
      if (!locked && !member.present) this.remove(hostname, member);
    }
  }

  badValue(key: string, now: Instant, why = 'not a valid record'): void {
    this.#badValues++;
    if (now.mono - this.#badValueLogAt < BAD_VALUE_LOG_MS) return;
    this.#badValueLogAt = now.mono;
    this.#step.log(2, `Coordinator: ignoring ${JSON.stringify(key.slice(0, 200))} in the store: ${why} (${this.#badValues} so far)`);
  }
}
