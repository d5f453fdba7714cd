/**
 * A peer as the core keeps it: its record, its liveness and the instance followed.
 */
import type { Checkpoint, HeartbeatMessage } from '../protocol/messages';
import { healthWordOf, type ServerRecord } from '../elector/types';
import type { SkippedSeqs } from '../elector/seq';
import type { Lane } from './lanes';

export interface Peer {
  record: ServerRecord;
  /** Monotonic ms of the last heartbeat heard. */
  lastHeard: number;
  iid: string | undefined;
  /** The process id its heartbeats carry, if any (for duplicate-hostname reports). */
  pid: number | undefined;
  /** Highest sequence number heard from this instance (-1: none, or an old server). */
  seq: number;
  address: string;
  /** The UDP port its heartbeats come from (0: not known), where a message to it alone goes. */
  port: number;
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
  /** The timing it is judged by: ours, or after a reload of ours the one before, until it is heard again. */
  lane: Lane<Peer>;
  /** The heartbeat interval it is configured for, as it says (0: it does not say, as the original). */
  tick: number;
  /** The timings (its and ours) when its timing was last looked at for a mismatch. */
  timingNoted: { tick: number; beats: number; ourTick: number; ourBeats: number };
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

/** What the record of a followed instance becomes if the other instance takes the name over. */
export function snapshot(peer: Peer): OtherInstance {
  const { record } = peer;
  const health = healthWordOf(record.health);
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
      ...(peer.pid === undefined ? {} : { pid: peer.pid }),
      ...(health === undefined ? {} : { health }),
    },
  };
}
