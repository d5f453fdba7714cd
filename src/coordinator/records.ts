/**
 * What the lease election stores under its prefix, and how it reads it back.
 *
 * Every value is a heartbeat as the wire codec knows it (JSON, the original's field names),
 * so that reading one back goes through `decode`, the very validation a datagram gets:
 * hostname pattern and prototype names refused, `__proto__` and `constructor.prototype`
 * keys refused anywhere, nesting depth, size, `data` size, field types. A store is one more
 * party that can hand us hostile bytes (anyone with write access to the prefix can).
 */
import type { Checkpoint, HealthWord, HeartbeatMessage, JsonObject } from '../protocol/messages';
import { decode, encode } from '../wire/codec';

/** Key names under the prefix. */
export interface Keys {
  prefix: string;
  /** The election key: exists while a master holds it, under the master's lease; its value names the master and its term. */
  master: string;
  /**
   * The fence: the master's term as decimal digits, under the master's lease, written and
   * deleted with `master` in the same transactions. A write guarded by "`term` holds T" is
   * refused by etcd itself once the master of term T is gone, whatever its clock says.
   */
  term: string;
  /** The highest term ever granted (no lease, it outlives masters): every campaign writes it, guarded. */
  lastTerm: string;
  /** `members/<hostname>`: each server's record, under its lease. */
  members: string;
  /** Written by a master as it steps down, naming its successor (under its lease). */
  handoff: string;
  /** Written by `promote()`: "hand the role to me" (under the requester's lease). */
  promote: string;
  /** The master's checkpoint, written fenced by its term; no lease, so it outlives the master. */
  checkpoint: string;
}

export function keysFor(prefix: string): Keys {
  return {
    prefix,
    master: `${prefix}master`,
    term: `${prefix}term`,
    lastTerm: `${prefix}last-term`,
    members: `${prefix}members/`,
    handoff: `${prefix}handoff`,
    promote: `${prefix}promote`,
    checkpoint: `${prefix}checkpoint`,
  };
}

export interface Limits {
  maxBytes: number;
  maxDataBytes: number;
}

/** A member's record: what it announces about itself, and the UDP port it takes messages on. */
export interface MemberValue {
  heartbeat: HeartbeatMessage;
  /** 0: it takes no messages. */
  port: number;
}

function heartbeat(hostname: string, fields: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return { action: 'heartbeat', hostname, ip: '', master: false, eligible: true, uptime: 0, data: {}, ...fields };
}

function text(message: HeartbeatMessage): string {
  return encode(message).toString('utf8').trimEnd();
}

/**
 * Terms read from the store above this are refused: a writer with access to the prefix must
 * not leave us a term we cannot count past (the next master takes one more).
 */
export const MAX_STORED_TERM = 2 ** 52;

export function encodeMember(fields: {
  hostname: string;
  ip: string;
  eligible: boolean;
  uptime: number;
  data: JsonObject;
  iid: string;
  priority: number;
  port: number;
  term?: number;
  health?: HealthWord;
}): string {
  const extra: Partial<HeartbeatMessage> = fields.term ? { term: fields.term } : {};
  if (fields.health) extra.health = fields.health;
  const json = text(
    heartbeat(fields.hostname, {
      ip: fields.ip,
      eligible: fields.eligible,
      uptime: fields.uptime,
      data: fields.data,
      iid: fields.iid,
      prio: fields.priority,
      ...extra,
    }),
  );
  // The port rides beside the heartbeat fields (unknown to the codec, which ignores it).
  return `${json.slice(0, -1)},"port":${fields.port}}`;
}

export function encodeMaster(hostname: string, ip: string, iid: string, term: number): string {
  return text(heartbeat(hostname, { ip, master: true, iid, term }));
}

/** A term as the `term` and `last-term` keys hold it: decimal digits, nothing else (so a fence compares exact text). */
export function encodeTerm(term: number): string {
  return String(term);
}

/** A stored term, or null when it is not one (digits, 1 to MAX_STORED_TERM). */
export function decodeTerm(value: string): number | null {
  if (!/^[1-9][0-9]{0,15}$/.test(value)) return null;
  const term = Number(value);
  return term <= MAX_STORED_TERM ? term : null;
}

export function encodeHandoff(hostname: string, iid: string, target: string, term: number): string {
  return text(heartbeat(hostname, { iid, handoff: target, term }));
}

export function encodePromote(hostname: string, iid: string, term: number): string {
  return text(heartbeat(hostname, { iid, term }));
}

export function encodeCheckpoint(hostname: string, checkpoint: Checkpoint): string {
  return text(heartbeat(hostname, { master: true, ckpt: checkpoint }));
}

/** Decode a stored value with the codec's rules; null when it is not a valid heartbeat. */
function read(value: string, limits: Limits): HeartbeatMessage | null {
  if (value.length > limits.maxBytes) return null; // a UTF-16 length never exceeds the byte length
  const result = decode(Buffer.from(value, 'utf8'), limits);
  return result.ok && result.message.action === 'heartbeat' ? result.message : null;
}

export function decodeMember(value: string, hostname: string, limits: Limits): MemberValue | null {
  const message = read(value, limits);
  if (!message || message.hostname !== hostname || message.iid === undefined || (message.term ?? 0) > MAX_STORED_TERM) return null;
  let port: unknown;
  try {
    port = (JSON.parse(value) as { port?: unknown }).port;
  } catch {
    return null;
  }
  if (port === undefined) port = 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { heartbeat: message, port };
}

/** The election key: who holds it, and its term (0: written without one, by an older version, whose term was the key's create revision). */
export function decodeMaster(value: string, limits: Limits): { hostname: string; iid: string; term: number } | null {
  const message = read(value, limits);
  if (!message || !message.master || message.iid === undefined) return null;
  const term = message.term ?? 0;
  if (term > MAX_STORED_TERM) return null;
  return { hostname: message.hostname, iid: message.iid, term };
}

export function decodeHandoff(value: string, limits: Limits): { from: string; target: string; term: number } | null {
  const message = read(value, limits);
  if (!message || message.handoff === undefined || message.term === undefined) return null;
  return { from: message.hostname, target: message.handoff, term: message.term };
}

export function decodePromote(value: string, limits: Limits): { hostname: string; iid: string; term: number } | null {
  const message = read(value, limits);
  if (!message || message.iid === undefined || message.term === undefined) return null;
  return { hostname: message.hostname, iid: message.iid, term: message.term };
}

export function decodeCheckpoint(value: string, limits: Limits): Checkpoint | null {
  return read(value, limits)?.ckpt ?? null;
}
