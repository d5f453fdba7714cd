/**
 * What the store says, routed to whom it concerns: a full read of the prefix (at start, and
 * after a watch broke), then every watched change, key by key. Records go to the table, the
 * election key to the roles, the checkpoint, handoff and promote keys to the election. Every
 * value is decoded with the wire codec's rules (records.ts); a bad one is counted and skipped.
 */
import type { Instant } from '../elector/types';
import type { KeyValue } from '../protocol/store';
import type { LeaseHandoffs } from './handoff';
import type { LeaseRoles } from './roles';
import type { LeaseSession } from './session';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

export class StoreReader {
  readonly #keys: records.Keys;
  readonly #limits: records.Limits;
  readonly #step: LeaseStep;
  readonly #table: LeaseTable;
  readonly #session: LeaseSession;
  readonly #roles: LeaseRoles;
  readonly #handoffs: LeaseHandoffs;

  constructor(
    keys: records.Keys,
    limits: records.Limits,
    parts: { step: LeaseStep; table: LeaseTable; session: LeaseSession; roles: LeaseRoles; handoffs: LeaseHandoffs },
  ) {
    this.#keys = keys;
    this.#limits = limits;
    this.#step = parts.step;
    this.#table = parts.table;
    this.#session = parts.session;
    this.#roles = parts.roles;
    this.#handoffs = parts.handoffs;
  }

  /** Everything under the prefix at `revision`: the table as it is, then watch from there. */
  read(kvs: KeyValue[], revision: number, now: Instant): void {
    const seen = new Set<string>();
    let master: KeyValue | null = null;
    // The terms first: a checkpoint is judged against the terms known.
    this.#roles.setLastTerm(kvs.find((kv) => kv.key === this.#keys.lastTerm) ?? null, now);
    const masterKv = kvs.find((kv) => kv.key === this.#keys.master);
    if (masterKv) {
      const parsed = records.decodeMaster(masterKv.value, this.#limits);
      this.#roles.noteTerm(parsed?.term || masterKv.createRevision);
    }
    for (const kv of kvs) {
      if (kv.key === this.#keys.master) {
        master = kv;
        continue;
      }
      if (kv.key === this.#keys.lastTerm) continue;
      if (kv.key.startsWith(this.#keys.members)) seen.add(kv.key.slice(this.#keys.members.length));
      this.apply(kv.key, kv, now, true);
    }
    // The store may have lost the checkpoint (restored, wiped): a master then writes ours back.
    if (!kvs.some((kv) => kv.key === this.#keys.checkpoint)) this.#roles.storedCheckpoint(null);
    // Members that are gone from the store went while we were not watching.
    for (const [hostname, member] of this.#table.members) {
      if (member.present && !seen.has(hostname)) this.#table.remove(hostname, member);
    }
    if (!seen.has(this.#table.hostname)) this.#session.record.recordMissing(now);
    this.#roles.setMaster(master, now);
    // Servers that start within a tick of each other elect by rank, not by who reached the
    // store first: the first time we see the cluster, we listen a tick before campaigning.
    this.#roles.firstRead(now);
    this.#session.watch(revision, now);
    this.#roles.repairLastTerm(now);
  }

  /**
   * Terms in what the store sent, even when we cannot act on it (it was read before our lease
   * lapsed): a term once seen is never granted again by us, whatever the store later forgets.
   */
  learnTerms(kvs: KeyValue[]): void {
    const keys = this.#keys;
    for (const kv of kvs) {
      let term: number | null = null;
      if (kv.key === keys.master) term = records.decodeMaster(kv.value, this.#limits)?.term ?? null;
      else if (kv.key === keys.term || kv.key === keys.lastTerm) term = records.decodeTerm(kv.value);
      else if (kv.key.startsWith(keys.members))
        term = records.decodeMember(kv.value, kv.key.slice(keys.members.length), this.#limits)?.heartbeat.term ?? null;
      if (term) this.#roles.noteTerm(term);
    }
  }

  /** One key changed (kv), or was deleted (null). */
  apply(key: string, kv: KeyValue | null, now: Instant, fromSync = false): void {
    const keys = this.#keys;
    const roles = this.#roles;
    if (key === keys.master) {
      roles.setMaster(kv, now);
    } else if (key === keys.lastTerm) {
      roles.setLastTerm(kv, now);
      if (!fromSync) roles.repairLastTerm(now);
    } else if (key === keys.term) {
      // The fence, written with the election key: the key's value already says it.
    } else if (key.startsWith(keys.members)) {
      const hostname = key.slice(keys.members.length);
      const own = hostname === this.#table.hostname;
      if (kv && own) {
        this.#table.putOwn(kv, now, this.#session.tockMs);
        this.#session.record.ownRecordRead(kv.value, now);
      } else if (kv) {
        // Every member carries the highest term it knows: a restored or wiped store learns it back.
        const term = this.#table.put(hostname, kv, now, roles.master);
        roles.noteTerm(term);
      } else if (own) this.#session.record.recordGone(now);
      else this.#table.delete(hostname);
    } else if (key === keys.checkpoint) {
      if (!kv) return;
      const checkpoint = records.decodeCheckpoint(kv.value, this.#limits);
      // A checkpoint of a term nobody has held is a forgery (or a store we cannot trust): it must not outrank the real ones.
      if (!checkpoint || checkpoint.t > roles.term) return this.#table.badValue(key, now);
      roles.storedCheckpoint(checkpoint);
    } else if (key === keys.handoff) {
      if (!kv || fromSync) return; // a handoff read at start is history: its moment has passed
      const handoff = records.decodeHandoff(kv.value, this.#limits);
      if (!handoff) return this.#table.badValue(key, now);
      this.#step.log(4, `${handoff.from} hands the master role to ${handoff.target}`);
      const pending = this.#handoffs.pending;
      const mine = pending?.stepDown === true && pending.target === handoff.target;
      this.#handoffs.pending = { target: handoff.target, until: now.mono + roles.handoffWindowMs, stepDown: mine };
      roles.settled = true;
    } else if (key === keys.promote) {
      if (!kv || fromSync) return;
      const request = records.decodePromote(kv.value, this.#limits);
      if (!request) return this.#table.badValue(key, now);
      roles.promoteRequested(request, now);
    }
  }
}
