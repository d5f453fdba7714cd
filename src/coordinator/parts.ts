/**
 * The lease election's options, and its modules wired together: who hears what from whom
 * (the session's hooks into the roles and the reader, the parts each module is handed).
 * The facade (lease-election.ts) routes inputs to them.
 */
import type { HealthWord, JsonObject } from '../protocol/messages';
import { healthOf } from '../elector/types';
import { PromoteHold } from '../elector/hold';
import { Preemption } from '../elector/preempt';
import { LeaseHandoffs } from './handoff';
import { AppMessages } from './messages';
import { StoreReader } from './reader';
import * as records from './records';
import { LeaseRoles } from './roles';
import { LeaseSession } from './session';
import { LeaseStep } from './step';
import { LeaseTable } from './table';

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
  /** Our health check (absent: none); the store gets its state only (see setHealth). */
  health?: HealthWord;
  priority?: number;
  maxServers?: number;
  /** Largest stored value read (and record written), bytes. @default 32768 */
  maxPacketBytes?: number;
  /** Largest `data` accepted in a record, bytes of JSON; 0: only maxPacketBytes. */
  maxDataBytes?: number;
  /**
   * How long to listen after the first read before a first campaign, so servers that start
   * together elect by rank. @default one tick
   */
  listenMs?: number;
  /** Datagrams are authenticated (secret_key): stricter freshness for messages. @default false */
  authenticated?: boolean;
  /**
   * The app drains its master work before a handover (drain_timeout, ms): a promote request is
   * held (a `drain` event) until `drained()`, or this long and a tock. Unset: handed over at once.
   */
  drainMs?: number;
  /** Preemption (elector/preempt.ts): ranking first, ask the master for the role once followed this long (ms). Unset: off. */
  preemptDelayMs?: number;
}

const DEFAULT_MAX_SERVERS = 1000;
const DEFAULT_MAX_PACKET_BYTES = 32768;

export interface LeaseParts {
  keys: records.Keys;
  step: LeaseStep;
  table: LeaseTable;
  session: LeaseSession;
  handoffs: LeaseHandoffs;
  preempt: Preemption;
  hold: PromoteHold;
  roles: LeaseRoles;
  reader: StoreReader;
  messages: AppMessages;
}

export function assemble(options: LeaseElectionOptions): LeaseParts {
  const { hostname, instanceId, ip, port } = options;
  const keys = records.keysFor(options.prefix);
  const limits: records.Limits = {
    maxBytes: options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES,
    maxDataBytes: options.maxDataBytes ?? 0,
  };
  const step = new LeaseStep(hostname);
  const table = new LeaseTable(
    {
      hostname,
      ip,
      instanceId,
      eligible: options.eligible ?? true,
      data: options.data ?? {},
      health: healthOf(options.health),
      priority: options.priority ?? 0,
      maxServers: options.maxServers ?? DEFAULT_MAX_SERVERS,
      limits,
    },
    step,
  );
  const session: LeaseSession = new LeaseSession(
    {
      hostname,
      instanceId,
      ip,
      port,
      keys,
      limits,
      tickMs: options.tickMs,
      checkBeats: options.checkBeats,
      ttlSeconds: options.ttlSeconds,
    },
    step,
    table,
    {
      leaseLost: (reason, lapsed, now, resumable) => roles.leaseLost(reason, lapsed, now, resumable ?? false),
      read: (kvs, revision, now) => reader.read(kvs, revision, now),
      learnTerms: (kvs) => reader.learnTerms(kvs),
      term: () => roles.term,
      rewritten: (why, now) => roles.storeRewritten(why, now),
    },
  );
  const handoffs = new LeaseHandoffs(step);
  const preempt = new Preemption({ delayMs: options.preemptDelayMs ?? null });
  const hold = new PromoteHold(
    { event: (event) => step.event(event), log: (level, message) => step.log(level, message) },
    options.drainMs ?? null,
  );
  const roles: LeaseRoles = new LeaseRoles(
    { hostname, ip, instanceId, keys, limits, listenMs: options.listenMs ?? 0 },
    { step, table, session, handoffs, hold },
  );
  const reader: StoreReader = new StoreReader(keys, limits, { step, table, session, roles, handoffs });
  const messages = new AppMessages(hostname, instanceId, step, table, options.authenticated ?? false);
  return { keys, step, table, session, handoffs, preempt, hold, roles, reader, messages };
}
