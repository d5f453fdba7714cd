/**
 * Who is master in the lease election: the campaign rule, the election key as we last read
 * it, and our role changes.
 *
 *  - the master is whoever created the `master` key; its term is the key's create revision;
 *  - with no key, the eligible member that ranks first campaigns (one transaction, "create
 *    it if absent"), once it has listened for a tick after its first read; after `patience`
 *    without a master anyone eligible does; a pending handoff lets only its target;
 *  - we are master only while the key is ours (our instance, our term) and our lease is
 *    alive; a key of ours that we no longer want (a lost reply, a term we gave up) is
 *    resigned by a transaction fenced on its term, again until the store shows it gone;
 *  - a handoff deletes the key and names the successor in one fenced transaction.
 */
import type { Checkpoint, JsonValue } from '../protocol/messages';
import type { Instant } from '../core/types';
import type { KeyValue, StoreResult } from '../protocol/store';
import type { LeaseHandoffs } from './handoff';
import type { LeaseSession } from './session';
import type { LeaseStep, Pending } from './step';
import type { LeaseTable } from './table';
import * as records from './records';

type Role = 'none' | 'slave' | 'master';

/** The election key as we last read it. */
export interface MasterView {
  hostname: string;
  iid: string;
  term: number;
  lease: string;
}

export interface RolesParts {
  step: LeaseStep;
  table: LeaseTable;
  session: LeaseSession;
  handoffs: LeaseHandoffs;
}

export class LeaseRoles {
  readonly #hostname: string;
  readonly #ip: string;
  readonly #instanceId: string;
  readonly #keys: records.Keys;
  readonly #limits: records.Limits;
  readonly #p: RolesParts;
  role: Role = 'none';
  masterHostname = '';
  /** The highest term seen (ours or the key's). */
  term = 0;
  checkpoint: Checkpoint | null = null;
  master: MasterView | null = null;
  /** Since when no key is known (Infinity: unknown until we read the store again). */
  noMasterSince = 0;
  /** At least this long (options.listenMs), however short the tick. */
  readonly #listenMs: number;
  /** Past this, after our first read, the rank may decide (we have listened for a tick). */
  listenUntil = Infinity;
  settled = false;
  #campaignInFlight = false;
  #nextCampaignAt = 0;
  /** The last term we held: a key of ours with this term or older is one we gave up, never to be adopted. */
  #heldTerm = 0;
  /** Resign again at this time: our key outlived a failed resign. */
  #resignDueAt = Infinity;

  constructor(options: { hostname: string; ip: string; instanceId: string; keys: records.Keys; limits: records.Limits; listenMs?: number }, parts: RolesParts) {
    this.#listenMs = options.listenMs ?? 0;
    this.#hostname = options.hostname;
    this.#ip = options.ip;
    this.#instanceId = options.instanceId;
    this.#keys = options.keys;
    this.#limits = options.limits;
    this.#p = parts;
  }

  /**
   * How long a handoff or a promote request may take: a tock, as in the UDP core, but never
   * less than a TTL: it takes three store round trips (request, resign, campaign), and with a
   * short tick a slow store needs more than a tock for them.
   */
  get handoffWindowMs(): number {
    return Math.max(this.#p.session.tockMs, this.#p.session.ttlMs);
  }

  /** Without a master for this long, anyone eligible campaigns, whatever the rank (never before the rank had its listen). */
  get #patienceMs(): number {
    const session = this.#p.session;
    return Math.max(session.ttlMs, session.tockMs, this.#listenMs + session.tickMs);
  }

  /** Campaign if the rules say we may. */
  evaluate(now: Instant): void {
    this.settled ||= now.mono >= this.listenUntil;
    if (this.#mayCampaign(now)) {
      const lease = this.#p.session.lease as { id: string };
      this.#campaignInFlight = true;
      this.#p.step.log(5, 'Coordinator: no master; campaigning');
      this.#p.step.op(
        { type: 'campaign', id: 0, key: this.#keys.master, value: records.encodeMaster(this.#hostname, this.#ip, this.#instanceId), lease: lease.id, alsoDelete: this.#keys.handoff, timeoutMs: this.#p.session.opTimeoutMs },
        now.mono,
      );
    }
  }

  #mayCampaign(now: Instant): boolean {
    const { session, table, handoffs } = this.#p;
    if (!session.active || !table.self.eligible || this.role === 'master' || this.#campaignInFlight) return false;
    if (!session.lease || !session.registered || !session.synced || this.master !== null || now.mono < this.#nextCampaignAt) return false;
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

  /** After our first full read: listen a tick before campaigning, so servers that start together elect by rank. */
  firstRead(now: Instant): void {
    if (this.listenUntil === Infinity) this.listenUntil = now.mono + Math.max(this.#p.session.tickMs, this.#listenMs);
    this.settled ||= now.mono >= this.listenUntil;
  }

  /** The election key changed (kv) or is gone (null). */
  setMaster(kv: KeyValue | null, now: Instant): void {
    const { table } = this.#p;
    let view: MasterView | null = null;
    if (kv) {
      const parsed = records.decodeMaster(kv.value, this.#limits);
      if (!parsed) table.badValue(kv.key, now);
      // An unreadable key still occupies the election: nobody can campaign while it exists.
      view = { hostname: parsed?.hostname ?? '', iid: parsed?.iid ?? '', term: kv.createRevision, lease: kv.lease };
      if (kv.createRevision > this.term) this.term = kv.createRevision;
    }
    const previous = this.master;
    this.master = view;
    if (previous && previous.hostname && previous.hostname !== view?.hostname) {
      const record = table.rows[previous.hostname];
      if (record && !record.self) record.master = false;
      this.#p.step.changed.add(previous.hostname);
    }
    if (this.role === 'master' && (!view || view.iid !== this.#instanceId || view.term !== table.self.term)) {
      this.#relinquish('our election key is gone from the store');
    }
    if (!view) {
      if (previous || this.noMasterSince === Infinity) this.noMasterSince = now.mono;
      this.#setMasterHostname('');
      return;
    }
    if (view.iid === this.#instanceId) {
      if (this.role === 'master') return;
      const lease = this.#p.session.lease;
      if (lease && view.lease === lease.id && table.self.eligible && now.mono < lease.validUntil && view.term > this.#heldTerm) {
        // A campaign whose reply we lost went through: the key is ours, under our live lease.
        this.#becomeMaster(view.term);
      } else {
        this.#resignKey(view.term, now);
      }
      return;
    }
    const record = view.hostname ? table.rows[view.hostname] : undefined;
    if (record && !record.self) {
      record.master = true;
      record.term = view.term;
      this.#p.step.changed.add(view.hostname);
    }
    this.settled = true;
    if (view.hostname) this.#p.handoffs.done(view.hostname);
    this.#setMasterHostname(view.hostname);
    this.#becomeSlave();
  }

  /** Our lease is gone or may be: master of nothing, and out of touch we cannot know who is. */
  leaseLost(reason: string): void {
    this.#campaignInFlight = false;
    if (this.role === 'master') this.#relinquish(`our lease may have expired (${reason})`);
    const previous = this.master;
    this.master = null;
    const record = previous?.hostname ? this.#p.table.rows[previous.hostname] : undefined;
    if (record && !record.self) record.master = false;
    if (previous?.hostname) this.#p.step.changed.add(previous.hostname);
    this.noMasterSince = Infinity;
    this.#setMasterHostname('');
    this.#p.handoffs.claimNow = false;
    this.#resignDueAt = Infinity;
  }

  /** The result of a campaign or a fenced write (`current`: sent under the lease we hold). */
  settle(pending: Pending, result: StoreResult, current: boolean, now: Instant): void {
    if (result.type === 'error') {
      const retryAt = now.mono + this.#p.session.retryMs;
      if (pending.type === 'campaign') {
        if (!current) return;
        // It may have gone through: the watch will show our key, and we adopt it then.
        this.#campaignInFlight = false;
        this.#nextCampaignAt = retryAt;
      } else if (pending.type === 'fenced' && current && pending.what === 'resign') {
        // Our key must not outlive a resign that failed: try again while the store shows it.
        this.#resignDueAt = Math.min(this.#resignDueAt, retryAt);
      }
      return;
    }
    if (result.type !== 'campaign') return;
    if (current) this.#campaignInFlight = false;
    if (result.won) {
      if (this.#heldTerm === result.revision) return; // the watch showed it first: already master
      const { session, table } = this.#p;
      if (current && session.active && table.self.eligible && this.role !== 'master' && session.lease && now.mono < session.lease.validUntil) {
        this.#becomeMaster(result.revision);
      } else if (current) {
        // Won, but no longer wanted (made ineligible meanwhile): give it back.
        this.#resignKey(result.revision, now);
      }
      return;
    }
    if (current && result.holder) this.setMaster(result.holder, now);
    if (current) this.#nextCampaignAt = now.mono + this.#p.session.retryMs;
  }

  /** A resign that failed is tried again while the store still shows our key. */
  resignIfDue(now: Instant): void {
    if (now.mono < this.#resignDueAt) return;
    this.#resignDueAt = Infinity;
    const master = this.master;
    if (this.#p.session.lease && master && master.iid === this.#instanceId && this.role !== 'master') this.#resignKey(master.term, now);
  }

  /** The master's side of promote(): a live eligible member asked for the role. */
  promoteRequested(request: { hostname: string; iid: string; term: number }, now: Instant): void {
    if (this.role !== 'master' || request.term !== this.term || request.hostname === this.#hostname) return;
    const member = this.#p.table.members.get(request.hostname);
    if (!member || !member.present || member.iid !== request.iid || !member.record.eligible) {
      this.#p.step.log(4, `Ignoring promote request from ${request.hostname}: not a live eligible member`);
      return;
    }
    this.#p.step.log(4, `${request.hostname} asked for the master role: handing off`);
    this.#handOff(request.hostname, false, now);
  }

  stepDown(now: Instant): void {
    if (!this.#p.session.active || this.role !== 'master') {
      this.#p.step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'this server is not master' });
      return;
    }
    const target = this.#p.table.bestPeer();
    if (!target) {
      this.#p.step.event({ type: 'stepdown', ok: false, hostname: '', reason: 'no other eligible server to hand off to' });
      return;
    }
    this.#handOff(target, true, now);
  }

  /** Ask for the role (active, deadline checked): the master hands over, or with none we campaign now. */
  promote(now: Instant): void {
    const { step, session, table, handoffs } = this.#p;
    const fail = (reason: string): void => step.event({ type: 'promote', ok: false, reason });
    if (this.role === 'master') return step.event({ type: 'promote', ok: true, reason: 'already master' });
    if (!table.self.eligible) return fail('this server is not eligible');
    const lease = session.lease;
    if (!lease || !session.synced) return fail('not in contact with the coordinator');
    handoffs.promoteUntil = now.mono + this.handoffWindowMs;
    const master = this.master;
    if (master && master.iid !== this.#instanceId) {
      step.log(4, `Asking ${master.hostname || 'the master'} to hand the master role to us`);
      step.op({ type: 'put', id: 0, key: this.#keys.promote, value: records.encodePromote(this.#hostname, this.#instanceId, master.term), lease: lease.id, timeoutMs: session.opTimeoutMs }, now.mono, 'promote');
    } else {
      step.log(4, 'Promoted with no master in place: campaigning now');
      handoffs.pending = null;
      handoffs.claimNow = true;
      this.settled = true;
      this.evaluate(now);
    }
  }

  /** Master only: store a checkpoint fenced by our term. False: not master. */
  setCheckpoint(data: JsonValue, now: Instant): boolean {
    const lease = this.#p.session.lease;
    if (this.role !== 'master' || !lease) return false;
    const version = this.checkpoint && this.checkpoint.t === this.term ? this.checkpoint.v + 1 : 1;
    this.checkpoint = { t: this.term, v: version, d: data };
    const value = records.encodeCheckpoint(this.#hostname, this.checkpoint);
    this.#p.step.op({ type: 'fenced', id: 0, fenceKey: this.#keys.master, term: this.term, put: { key: this.#keys.checkpoint, value, lease: '0' }, timeoutMs: this.#p.session.opTimeoutMs }, now.mono, 'checkpoint');
    return true;
  }

  /** We were made ineligible: a master hands off to the next in rank, or resigns. */
  becameIneligible(now: Instant): void {
    if (this.role !== 'master') return;
    const target = this.#p.table.bestPeer();
    if (target) this.#handOff(target, false, now);
    else this.#resign('we are no longer eligible', now);
  }

  stop(): void {
    this.role = 'none';
    this.#p.table.self.master = false;
  }

  wakeAt(now: Instant): number {
    let wake = this.#resignDueAt;
    if (this.master === null && this.#p.table.self.eligible && this.role !== 'master') {
      if (!this.settled) wake = Math.min(wake, this.listenUntil);
      if (this.#nextCampaignAt > now.mono) wake = Math.min(wake, this.#nextCampaignAt);
      const impatient = this.noMasterSince + this.#patienceMs;
      if (impatient > now.mono) wake = Math.min(wake, impatient);
    }
    return wake;
  }

  #handOff(target: string, stepDown: boolean, now: Instant): void {
    const { session, table, handoffs } = this.#p;
    const lease = session.lease;
    const term = table.self.term;
    handoffs.pending = { target, until: now.mono + this.handoffWindowMs, stepDown };
    this.#relinquish(`handing off to ${target}`);
    if (!lease) return;
    this.#p.step.op(
      {
        type: 'fenced',
        id: 0,
        fenceKey: this.#keys.master,
        term,
        deleteKey: this.#keys.master,
        put: { key: this.#keys.handoff, value: records.encodeHandoff(this.#hostname, this.#instanceId, target, term), lease: lease.id },
        timeoutMs: session.opTimeoutMs,
      },
      now.mono,
      'resign',
    );
  }

  #resign(reason: string, now: Instant): void {
    const term = this.#p.table.self.term;
    this.#relinquish(reason);
    this.#resignKey(term, now);
  }

  /** Delete the election key of `term` if it is still there (ours, no longer wanted). */
  #resignKey(term: number, now: Instant): void {
    this.#p.step.op({ type: 'fenced', id: 0, fenceKey: this.#keys.master, term, deleteKey: this.#keys.master, timeoutMs: this.#p.session.opTimeoutMs }, now.mono, 'resign');
  }

  #becomeMaster(term: number): void {
    const { step, table, session, handoffs } = this.#p;
    this.role = 'master';
    table.self.master = true;
    if (term > this.term) this.term = term;
    table.self.term = term;
    this.#heldTerm = term;
    this.master = { hostname: this.#hostname, iid: this.#instanceId, term, lease: session.lease?.id ?? '0' };
    handoffs.claimNow = false;
    handoffs.done(this.#hostname);
    this.#setMasterHostname(this.#hostname);
    step.log(4, `We are now the master server (term ${term})`, { servers: Object.keys(table.rows).sort() });
    step.event({ type: 'master', term, checkpoint: this.checkpoint?.d ?? null });
    handoffs.promoted(term);
  }

  #becomeSlave(): void {
    if (this.role === 'slave') return;
    this.role = 'slave';
    this.#p.table.self.master = false;
    this.#p.step.log(4, `We are now a slave server (master: ${this.masterHostname})`);
    this.#p.step.event({ type: 'slave' });
  }

  #relinquish(reason: string): void {
    this.#p.step.log(4, `We are relinquishing master control: ${reason}`);
    this.role = 'slave';
    this.#p.table.self.master = false;
    this.#setMasterHostname('');
    this.#p.step.event({ type: 'slave' });
  }

  #setMasterHostname(hostname: string): void {
    if (hostname === this.masterHostname) return;
    const previous = this.masterHostname;
    this.masterHostname = hostname;
    if (hostname && hostname !== this.#hostname) this.#p.step.log(6, `The master server is now: ${hostname}`);
    this.#p.step.event({ type: 'masterchange', hostname, previous });
  }
}
