/**
 * Our heartbeat as we send it: the original's fields, then the new ones only when they say
 * something (the original ignores them; with no secret the wire format is the original's,
 * fields only ever added: SPEC §5).
 *
 * Apart from roles.ts because composing a packet is not an election rule: roles.ts decides
 * when we speak and what our role is; this reads it (the `Speaker`, which Roles is) and says it.
 */
import type { Checkpoint, HeartbeatMessage } from '../protocol/messages';
import { healthWordOf, type Instant, type ServerRecord } from '../elector/types';
import type { PromoteHold } from '../elector/hold';
import type { Announcer } from './announce';
import type { FreshnessGuard } from './freshness';
import type { Handoffs } from './handoff';
import type { MemberTable } from './members';
import type { Timing } from './timing';
import type { Words } from './words';

/** What our heartbeat says of us. */
export interface Speaker {
  readonly hostname: string;
  readonly self: ServerRecord;
  readonly master: boolean;
  readonly role: string;
  readonly masterHostname: string;
  readonly fencingTerm: number;
  readonly priority: number;
  readonly startedAt: number;
  readonly checkpoint: Checkpoint | null;
}

export interface HeartbeatParts {
  ip: string;
  instanceId: string;
  pid?: number | undefined;
  /** A promote request held while the app drains: our heartbeats name its sender. */
  hold?: PromoteHold | undefined;
  timing: Timing;
  members: MemberTable;
  handoffs: Handoffs;
  announcer: Announcer;
  guard: FreshnessGuard | null;
  words: Words;
}

export class Heartbeats {
  readonly #me: Speaker;
  readonly #p: HeartbeatParts;

  constructor(me: Speaker, parts: HeartbeatParts) {
    this.#me = me;
    this.#p = parts;
  }

  send(now: Instant, handingTo?: string): void {
    const me = this.#me;
    const { announcer, handoffs, members, timing } = this.#p;
    const handoff = handingTo ?? handoffs.announced(me.master);
    const self = me.self;
    const term = me.fencingTerm;
    self.term = term;
    self.uptime = Math.max(0, Math.floor((now.mono - me.startedAt) / 1000));
    self.now = now.wall / 1000;
    members.touch(me.hostname);
    const heartbeat: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: me.hostname,
      ip: this.#p.ip,
      master: me.master,
      eligible: self.eligible,
      uptime: self.uptime,
      data: self.data,
      iid: this.#p.instanceId,
      seq: announcer.nextSeq(),
    };
    // Our configured timing: a peer configured slower paces its heartbeats to ours, and the
    // status CLI judges our silence by it (the original ignores these fields).
    heartbeat.tick = Math.min(86_400_000, Math.max(10, Math.round(timing.tickMs)));
    heartbeat.beats = timing.checkBeats;
    if (this.#p.pid !== undefined) heartbeat.pid = this.#p.pid;
    // Paced to a faster peer: say so, so a peer that reloaded a shorter tick knows when to expect us.
    const pace = Math.min(86_400_000, Math.max(10, Math.round(announcer.intervalMs(now))));
    if (pace !== heartbeat.tick) heartbeat.pace = pace;
    // Other new fields only when they say something. A master says the term it serves under;
    // a slave, the highest it knows (the next claim, anyone's, goes above it).
    if (term > 0) heartbeat.term = term;
    if (me.priority !== 0) heartbeat.prio = me.priority;
    if (handoff !== undefined) heartbeat.handoff = handoff;
    const draining = me.master ? this.#p.hold?.target : null;
    if (draining) heartbeat.drain = draining;
    // The master (and a master handing off) carries the checkpoint, so every server holds the latest.
    if (me.checkpoint && (me.master || handoff !== undefined)) heartbeat.ckpt = me.checkpoint;
    // The master we follow: a server cut off from it, hearing us, keeps it (relays.ts).
    const master = me.masterHostname;
    const lead = me.role === 'slave' && master && master !== me.hostname ? this.#p.words.lead(master, now) : undefined;
    if (lead) heartbeat.lead = lead;
    const health = healthWordOf(self.health);
    if (health) heartbeat.health = health;
    const echo = this.#p.guard?.takeEchoes();
    if (echo) heartbeat.echo = echo;
    announcer.send(heartbeat);
    announcer.heartbeatSent(now);
  }
}
