/**
 * When we campaign in the lease election, and for which term: the `last-term` key as last read
 * (its value, and the revision a campaign is guarded on), the listen after a first read or a
 * rewritten store, the patience after which rank no longer matters, and the campaign in flight.
 *
 *  - a new term is one above every term we know: `last-term`, the terms we have seen, the one
 *    we held; the campaign's transaction is guarded on `last-term`'s revision, so no campaign
 *    in between can slip by;
 *  - with no key, the eligible member that ranks first campaigns, once it has listened for a
 *    tick after its first read; after `patience` without a master anyone eligible does; a
 *    pending handoff lets only its target;
 *  - a `last-term` below a term we have seen (the store restored or wiped) is raised back.
 *
 * What a won campaign does (the role, the key adopted) is the roles' (roles.ts), which read and
 * set `settled`, `noMasterSince`, `inFlight` and `nextAt` as results come in.
 */
import type { Instant } from '../elector/types';
import type { KeyValue } from '../protocol/store';
import type { LeaseHandoffs } from './handoff';
import type { LeaseSession } from './session';
import type { LeaseStep } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

/** What a campaign needs to know of the roles. */
export interface CampaignRoles {
  readonly role: 'none' | 'slave' | 'master';
  /** The election key as last read (null: none). */
  readonly master: object | null;
  /** The highest term seen. */
  readonly term: number;
  /** The last term we held. */
  readonly heldTerm: number;
  /** Shutting down: no more campaigns. */
  readonly leaving: boolean;
  noteTerm(term: number): void;
}

export interface CampaignParts {
  step: LeaseStep;
  table: LeaseTable;
  session: LeaseSession;
  handoffs: LeaseHandoffs;
}

export class LeaseCampaign {
  readonly #hostname: string;
  readonly #ip: string;
  readonly #instanceId: string;
  readonly #keys: records.Keys;
  readonly #p: CampaignParts;
  readonly #roles: CampaignRoles;
  /** At least this long (options.listenMs), however short the tick. */
  readonly #listenMs: number;
  /** Past this, after our first read, the rank may decide (we have listened for a tick). */
  listenUntil = Infinity;
  settled = false;
  /** Since when no key is known (Infinity: unknown until we read the store). */
  noMasterSince = Infinity;
  /** A campaign of ours awaits its result. */
  inFlight = false;
  /** No campaign before this (after a failed or lost one). */
  nextAt = 0;
  /** The `last-term` key as last read: its value, and the revision a campaign is guarded on. */
  #lastTerm = { term: 0, modRevision: 0 };
  #repairInFlight = false;

  constructor(
    options: { hostname: string; ip: string; instanceId: string; keys: records.Keys; listenMs?: number },
    parts: CampaignParts,
    roles: CampaignRoles,
  ) {
    this.#hostname = options.hostname;
    this.#ip = options.ip;
    this.#instanceId = options.instanceId;
    this.#keys = options.keys;
    this.#listenMs = options.listenMs ?? 0;
    this.#p = parts;
    this.#roles = roles;
  }

  /** Without a master for this long, anyone eligible campaigns, whatever the rank (never before the rank had its listen). */
  get #patienceMs(): number {
    const session = this.#p.session;
    return Math.max(session.ttlMs, session.tockMs, this.#listenMs + session.tickMs);
  }

  /** The `last-term` key changed (kv) or is gone (null). */
  setLastTerm(kv: KeyValue | null, now: Instant): void {
    if (!kv) {
      this.#lastTerm = { term: 0, modRevision: 0 };
      return;
    }
    const term = records.decodeTerm(kv.value);
    if (term === null) this.#p.table.badValue(kv.key, now);
    this.#lastTerm = { term: term ?? 0, modRevision: kv.modRevision };
    this.#roles.noteTerm(term ?? 0);
  }

  /**
   * The store holds a lower `last-term` than a term we have seen: it was restored from an
   * older snapshot, or wiped (or written by an older version). Raise it back at once, guarded
   * by the revision we read (a campaign or another server's repair in between wins), so that a
   * server that never saw the newer terms (started since) still campaigns above them.
   */
  repairLastTerm(now: Instant): void {
    const lease = this.#p.session.lease;
    const term = this.#roles.term;
    if (!lease || this.#repairInFlight || this.#lastTerm.term >= term || this.#roles.leaving) return;
    this.#repairInFlight = true;
    this.#p.step.log(
      3,
      `Coordinator: the store's last term is ${this.#lastTerm.term || 'missing'}, below term ${term} we have seen (etcd restored or wiped?): raising it back`,
    );
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.#keys.lastTerm,
        fenceModRevision: this.#lastTerm.modRevision,
        puts: [{ key: this.#keys.lastTerm, value: records.encodeTerm(term), lease: '0' }],
        timeoutMs: this.#p.session.opTimeoutMs,
      },
      now.mono,
      'last-term',
    );
  }

  /** The repair of `last-term` was answered (either way: a later read shows what the store holds). */
  repairSettled(): void {
    this.#repairInFlight = false;
  }

  /** Campaign if the rules say we may. */
  run(now: Instant): void {
    this.settled ||= now.mono >= this.listenUntil;
    if (!this.#may(now)) return;
    const lease = this.#p.session.lease as { id: string };
    const keys = this.#keys;
    // Above every term we know of, whatever the store's revision: the store may have been restored or wiped.
    const term = Math.max(this.#roles.term, this.#lastTerm.term, this.#roles.heldTerm) + 1;
    const text = records.encodeTerm(term);
    this.inFlight = true;
    this.#p.step.log(5, `Coordinator: no master; campaigning for term ${term}`);
    this.#p.step.op(
      {
        type: 'campaign',
        id: 0,
        key: keys.master,
        value: records.encodeMaster(this.#hostname, this.#ip, this.#instanceId, term),
        lease: lease.id,
        alsoPut: [
          { key: keys.term, value: text, lease: lease.id },
          { key: keys.lastTerm, value: text, lease: '0' },
        ],
        alsoDelete: keys.handoff,
        guard: { key: keys.lastTerm, modRevision: this.#lastTerm.modRevision },
        timeoutMs: this.#p.session.opTimeoutMs,
      },
      now.mono,
      undefined,
      { term },
    );
  }

  #may(now: Instant): boolean {
    const { session, table, handoffs } = this.#p;
    const roles = this.#roles;
    if (!session.active || roles.leaving || !table.self.eligible || roles.role === 'master' || this.inFlight) return false;
    if (!session.lease || !session.registered || !session.synced || roles.master !== null || now.mono < this.nextAt) return false;
    const handoff = handoffs.pending;
    if (handoff && now.mono < handoff.until) {
      if (handoff.target === this.#hostname) return !handoff.stepDown;
      const target = table.members.get(handoff.target);
      if (target?.present) return false; // it campaigns, not us
    }
    if (handoffs.claimNow) return true;
    if (!this.settled) return false;
    if (now.mono >= this.noMasterSince + this.#patienceMs) return true;
    const best = table.bestPeer();
    return best === null || table.compare(this.#hostname, best) < 0;
  }

  /**
   * The store's history was rewritten (restored from an older snapshot, or wiped): listen a
   * TTL and a tick before any campaign. Within a TTL every live server renews its lease, so
   * hears of it too, reads again, raises `last-term` back and registers its record (with the
   * highest term it knows): the next term is above every term a live server has seen.
   */
  storeRewritten(why: string, now: Instant): void {
    const session = this.#p.session;
    const listenMs = Math.max(session.ttlMs + session.tickMs, this.#listenMs);
    this.#p.step.log(
      2,
      `Coordinator: etcd was restored from a snapshot or wiped (${why}): listening ${Math.round(listenMs)} ms before any campaign`,
    );
    this.listenUntil = Math.max(this.listenUntil === Infinity ? 0 : this.listenUntil, now.mono + listenMs);
    this.settled = false;
    this.noMasterSince = now.mono;
  }

  /** After our first full read: listen a tick before campaigning, so servers that start together elect by rank. */
  firstRead(now: Instant): void {
    if (this.listenUntil === Infinity) this.listenUntil = now.mono + Math.max(this.#p.session.tickMs, this.#listenMs);
    this.settled ||= now.mono >= this.listenUntil;
  }

  /** When a campaign may come due: the listen's end, a retry, patience running out (Infinity: none can). */
  wakeAt(now: Instant): number {
    const roles = this.#roles;
    let wake = Infinity;
    if (roles.master === null && this.#p.table.self.eligible && roles.role !== 'master') {
      if (!this.settled) wake = Math.min(wake, this.listenUntil);
      if (this.nextAt > now.mono) wake = Math.min(wake, this.nextAt);
      const impatient = this.noMasterSince + this.#patienceMs;
      if (impatient > now.mono) wake = Math.min(wake, impatient);
    }
    return wake;
  }
}
