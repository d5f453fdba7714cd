/**
 * The wire codec: the original's JSON + "\n" packets, both directions.
 *
 * `decode` treats every byte as hostile: it never throws, and returns either a typed
 * message holding only validated fields, or the reason the datagram was dropped.
 * Unknown fields are ignored (that is how new fields reach old servers and back).
 *
 * With a keyring (`secret_key`), the same JSON travels inside an authenticated envelope
 * (wire/auth.ts) and nothing else is accepted; without one the bytes are the original's.
 */
import { isIP } from 'node:net';
import type {
  AppMessage,
  HealthWord,
  HeartbeatMessage,
  HelloMessage,
  JsonObject,
  JsonValue,
  Lead,
  Message,
  PeersMessage,
  WireMessage,
} from '../protocol/messages';
import {
  CLUSTER_ID_PATTERN,
  DEFAULT_MAX_DATA_BYTES,
  DEFAULT_MAX_PACKET_BYTES,
  ECHO_PATTERN,
  INSTANCE_ID_PATTERN,
  MAX_DATA_DEPTH,
  MAX_ECHOES,
  REQUEST_ID_PATTERN,
  MAX_GOSSIP_ADDRESSES,
  MAX_PRIORITY,
  MAX_PID,
  MAX_UPTIME_S,
  MESSAGE_TYPE_PATTERN,
  MAX_HEALTH_COUNT,
  MAX_HEALTH_ERROR_CHARS,
  MAX_HEALTH_RISE_FALL,
  HEALTH_ERROR_PATTERN,
  isValidHostname,
} from '../protocol/limits';
import { parseAddress } from '../protocol/address';
import { looksSealed, open, seal, type Keyring } from './auth';

export type DropReason =
  | 'oversized'
  | 'not-json'
  | 'not-object'
  | 'unknown-action'
  | 'bad-field'
  | 'special-key'
  | 'too-deep'
  | 'data-oversized'
  /** A secret is configured and the datagram has no authenticated envelope. */
  | 'unauthenticated'
  /** Signed with a key that is not (or no longer) in `secret_key`. */
  | 'unknown-key'
  /** The MAC does not match: altered in transit, or forged. */
  | 'bad-mac'
  /** An authenticated datagram reached a server with no `secret_key`. */
  | 'unexpected-auth';

export type DecodeResult =
  | { ok: true; message: Message /** Which `secret_key` entry verified it (0 signs); absent without a secret. */; keyIndex?: number }
  | { ok: false; reason: DropReason; detail: string };

/** What `decodeWire` returns: a core message, a gossip datagram, or the reason for the drop. */
export type WireResult = DecodeResult | { ok: true; gossip: PeersMessage /** As for messages. */; keyIndex?: number };

export interface DecodeLimits {
  maxBytes?: number;
  /** Largest `data` accepted, in bytes of JSON; 0 or absent: only the packet limit applies. */
  maxDataBytes?: number;
  /** When set, only datagrams signed with one of its keys are accepted. */
  keyring?: Keyring | null;
}

/**
 * Encode in the original's field order; new fields go after `action`. With a keyring the
 * JSON is sealed in the authenticated envelope; without one the bytes are the original's.
 */
export function encode(message: WireMessage, keyring?: Keyring | null): Buffer {
  const body = encodeBody(message);
  return keyring ? seal(body, keyring) : body;
}

function encodeBody(message: WireMessage): Buffer {
  let wire: Record<string, unknown>;
  switch (message.action) {
    case 'peers':
      return Buffer.from(JSON.stringify({ hostname: message.hostname, action: 'peers', addrs: message.addrs }) + '\n', 'utf8');
    case 'heartbeat':
      wire = {
        hostname: message.hostname,
        ip: message.ip,
        master: message.master ? 1 : 0,
        eligible: message.eligible ? 1 : 0,
        uptime: message.uptime,
        data: message.data,
        action: 'heartbeat',
      };
      break;
    case 'shutdown':
    case 'hello':
      wire = { hostname: message.hostname, action: message.action };
      break;
    case 'promote':
      wire = { hostname: message.hostname, action: 'promote', target: message.target };
      break;
    case 'message':
      wire = { hostname: message.hostname, action: 'message', to: message.to, type: message.type, payload: message.payload };
      if (message.rid !== undefined) wire.rid = message.rid;
      if (message.re !== undefined) wire.re = message.re;
      break;
  }
  if (message.iid !== undefined) wire.iid = message.iid;
  if (message.seq !== undefined) wire.seq = message.seq;
  if (message.action === 'heartbeat') {
    if (message.term !== undefined) wire.term = message.term;
    if (message.prio !== undefined) wire.prio = message.prio;
    if (message.handoff !== undefined) wire.handoff = message.handoff;
    if (message.drain !== undefined) wire.drain = message.drain;
    if (message.ckpt !== undefined) wire.ckpt = message.ckpt;
    if (message.tick !== undefined) wire.tick = message.tick;
    if (message.beats !== undefined) wire.beats = message.beats;
    if (message.pid !== undefined) wire.pid = message.pid;
    if (message.pace !== undefined) wire.pace = message.pace;
    if (message.lead !== undefined) wire.lead = message.lead;
    if (message.health !== undefined) wire.health = healthOnWire(message.health);
  }
  if (message.cid !== undefined) wire.cid = message.cid;
  if (message.action === 'hello' && message.for !== undefined) wire.for = message.for;
  if (message.action === 'heartbeat' && message.echo !== undefined && message.echo.length > 0) wire.echo = message.echo;
  return Buffer.from(JSON.stringify(wire) + '\n', 'utf8');
}

/** The health word in a fixed key order, with only its own keys and no zero count. */
function healthOnWire(health: HealthWord): Record<string, unknown> {
  const wire: Record<string, unknown> = { s: health.s };
  if (health.f) wire.f = health.f;
  if (health.p) wire.p = health.p;
  wire.rise = health.rise;
  wire.fall = health.fall;
  if (health.e !== undefined) wire.e = health.e;
  return wire;
}

/** Size of `data` as it goes on the wire. */
export function dataBytes(data: JsonObject): number {
  return Buffer.byteLength(JSON.stringify(data), 'utf8');
}

/**
 * Decode a datagram for the election core. Gossip is not for the core: to this decoder
 * it is an action it does not speak (the shell uses decodeWire).
 */
export function decode(datagram: Buffer, limits: DecodeLimits = {}): DecodeResult {
  const result = decodeWire(datagram, limits);
  return 'gossip' in result ? drop('unknown-action', 'peers') : result;
}

/** Decode any datagram a server may receive: core messages and the shell's gossip. */
export function decodeWire(datagram: Buffer, limits: DecodeLimits = {}): WireResult {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_PACKET_BYTES;
  if (datagram.length > maxBytes) return drop('oversized', `${datagram.length} bytes > ${maxBytes}`);
  let body = datagram;
  let keyIndex: number | undefined;
  if (limits.keyring) {
    // The MAC is checked before anything is parsed: a forged datagram costs one HMAC.
    const opened = open(datagram, limits.keyring);
    if (!opened.ok) return drop(opened.reason, opened.detail);
    body = opened.body;
    keyIndex = opened.keyIndex;
  } else if (looksSealed(datagram)) {
    return drop('unexpected-auth', 'authenticated datagram, but no secret_key is configured here');
  }
  // The original only looks at datagrams that start with "{"; so do we.
  if (body.length === 0 || body[0] !== 0x7b) return drop('not-json', 'does not start with "{"');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return drop('not-json', err instanceof Error ? err.message.slice(0, 80) : 'parse error');
  }
  if (!isPlainObject(parsed)) return drop('not-object', 'top level is not an object');
  const shape = checkShape(parsed);
  if (shape) return shape;
  if (parsed.action === 'peers') {
    // Gossip (unicast peer addresses) carries no instance: it only adds destinations.
    const gossip = validatePeers(parsed);
    return 'gossip' in gossip && keyIndex !== undefined ? { ...gossip, keyIndex } : gossip;
  }
  const result = validate(parsed, body.length, limits.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES);
  if (!result.ok || keyIndex === undefined) return result;
  // Replay protection rests on (iid, seq): an authenticated packet without them is refused.
  if (result.message.iid === undefined || result.message.seq === undefined) {
    return drop('bad-field', 'iid and seq are required when authenticated');
  }
  return { ok: true, message: result.message, keyIndex };
}

/** A gossip datagram: a valid hostname and at most MAX_GOSSIP_ADDRESSES canonical unicast `ip:port`. */
function validatePeers(raw: Record<string, unknown>): WireResult {
  if (!isValidHostname(raw.hostname)) return drop('bad-field', 'hostname');
  const addrs = raw.addrs;
  if (!Array.isArray(addrs) || addrs.length > MAX_GOSSIP_ADDRESSES) return drop('bad-field', 'addrs');
  for (const entry of addrs) {
    if (parseAddress(entry) === null) return drop('bad-field', 'addrs');
  }
  return { ok: true, gossip: { action: 'peers', hostname: raw.hostname, addrs: addrs as string[] } };
}

function validate(raw: Record<string, unknown>, bodyBytes: number, maxDataBytes: number): DecodeResult {
  const action = raw.action;
  if (typeof action !== 'string') return drop('bad-field', 'action');
  if (action !== 'heartbeat' && action !== 'shutdown' && action !== 'hello' && action !== 'promote' && action !== 'message') {
    return drop('unknown-action', action.slice(0, 32));
  }
  const hostname = raw.hostname;
  if (!isValidHostname(hostname)) return drop('bad-field', 'hostname');
  let iid: string | undefined;
  if (raw.iid !== undefined) {
    if (typeof raw.iid !== 'string' || !INSTANCE_ID_PATTERN.test(raw.iid)) return drop('bad-field', 'iid');
    iid = raw.iid;
  }
  let seq: number | undefined;
  if (raw.seq !== undefined) {
    if (typeof raw.seq !== 'number' || !Number.isSafeInteger(raw.seq) || raw.seq < 0) return drop('bad-field', 'seq');
    seq = raw.seq;
  }
  let cid: string | undefined;
  if (raw.cid !== undefined) {
    if (typeof raw.cid !== 'string' || !CLUSTER_ID_PATTERN.test(raw.cid)) return drop('bad-field', 'cid');
    cid = raw.cid;
  }
  if (action !== 'heartbeat') {
    let message: Message;
    if (action === 'promote') {
      if (!isValidHostname(raw.target)) return drop('bad-field', 'target');
      message = { action, hostname, target: raw.target };
    } else if (action === 'message') {
      if (raw.to !== '*' && !isValidHostname(raw.to)) return drop('bad-field', 'to');
      if (typeof raw.type !== 'string' || !MESSAGE_TYPE_PATTERN.test(raw.type)) return drop('bad-field', 'type');
      if (raw.payload === undefined) return drop('bad-field', 'payload');
      const app: AppMessage = { action, hostname, to: raw.to as string, type: raw.type, payload: raw.payload as JsonValue };
      for (const key of ['rid', 're'] as const) {
        const value = raw[key];
        if (value === undefined) continue;
        if (typeof value !== 'string' || !REQUEST_ID_PATTERN.test(value)) return drop('bad-field', key);
        app[key] = value;
      }
      message = app;
    } else {
      message = { action, hostname };
    }
    if (iid !== undefined) message.iid = iid;
    if (seq !== undefined) message.seq = seq;
    if (cid !== undefined) message.cid = cid;
    if (action === 'hello' && raw.for !== undefined) {
      if (typeof raw.for !== 'string' || !INSTANCE_ID_PATTERN.test(raw.for)) return drop('bad-field', 'for');
      (message as HelloMessage).for = raw.for;
    }
    return { ok: true, message };
  }

  const ip = raw.ip;
  if (typeof ip !== 'string' || (ip !== '' && isIP(ip) === 0)) return drop('bad-field', 'ip');
  const master = flag(raw.master);
  if (master === undefined) return drop('bad-field', 'master');
  const eligible = flag(raw.eligible);
  if (eligible === undefined) return drop('bad-field', 'eligible');
  const uptime = raw.uptime;
  if (typeof uptime !== 'number' || !Number.isFinite(uptime) || uptime < 0 || uptime > MAX_UPTIME_S) return drop('bad-field', 'uptime');
  let data: JsonObject = {};
  if (raw.data !== undefined && raw.data !== null) {
    if (!isPlainObject(raw.data)) return drop('bad-field', 'data');
    data = raw.data as JsonObject;
    // `data` is smaller than the body it came in; measure it only when that could be too big.
    if (maxDataBytes > 0 && bodyBytes > maxDataBytes) {
      const size = dataBytes(data);
      if (size > maxDataBytes) return drop('data-oversized', `data is ${size} bytes > ${maxDataBytes}`);
    }
  }
  let echo: string[] | undefined;
  if (raw.echo !== undefined) {
    if (!Array.isArray(raw.echo) || raw.echo.length > MAX_ECHOES) return drop('bad-field', 'echo');
    for (const entry of raw.echo) {
      if (typeof entry !== 'string' || !ECHO_PATTERN.test(entry)) return drop('bad-field', 'echo');
    }
    echo = raw.echo as string[];
  }
  const message: HeartbeatMessage = { action, hostname, ip, master, eligible, uptime, data };
  if (iid !== undefined) message.iid = iid;
  if (seq !== undefined) message.seq = seq;
  if (cid !== undefined) message.cid = cid;
  if (raw.term !== undefined) {
    if (typeof raw.term !== 'number' || !Number.isSafeInteger(raw.term) || raw.term < 0) return drop('bad-field', 'term');
    message.term = raw.term;
  }
  if (raw.prio !== undefined) {
    if (typeof raw.prio !== 'number' || !Number.isFinite(raw.prio) || Math.abs(raw.prio) > MAX_PRIORITY) return drop('bad-field', 'prio');
    message.prio = raw.prio;
  }
  if (raw.handoff !== undefined) {
    if (!isValidHostname(raw.handoff)) return drop('bad-field', 'handoff');
    message.handoff = raw.handoff;
  }
  if (raw.drain !== undefined) {
    if (!isValidHostname(raw.drain)) return drop('bad-field', 'drain');
    message.drain = raw.drain;
  }
  if (raw.ckpt !== undefined) {
    const ckpt = raw.ckpt;
    if (!isPlainObject(ckpt) || !isCounter(ckpt.t) || !isCounter(ckpt.v) || ckpt.d === undefined) return drop('bad-field', 'ckpt');
    message.ckpt = { t: ckpt.t, v: ckpt.v, d: ckpt.d as JsonValue };
  }
  // The sender's timing, bounded like heartbeat_freq (10 ms to a day) and check_beats.
  if (raw.tick !== undefined) {
    if (!isIntegerIn(raw.tick, 10, 86_400_000)) return drop('bad-field', 'tick');
    message.tick = raw.tick;
  }
  if (raw.beats !== undefined) {
    if (!isIntegerIn(raw.beats, 1, 1000)) return drop('bad-field', 'beats');
    message.beats = raw.beats;
  }
  if (raw.pid !== undefined) {
    if (!isIntegerIn(raw.pid, 1, MAX_PID)) return drop('bad-field', 'pid');
    message.pid = raw.pid;
  }
  // Its heartbeat interval while it paces to a faster peer: within the same bounds as tick.
  if (raw.pace !== undefined) {
    if (!isIntegerIn(raw.pace, 10, 86_400_000)) return drop('bad-field', 'pace');
    message.pace = raw.pace;
  }
  // The master it follows and hears: its hostname, how long ago it heard it (ms, at most a day), its term and priority.
  if (raw.lead !== undefined) {
    const lead = raw.lead;
    if (!isPlainObject(lead) || !isValidHostname(lead.h) || !isIntegerIn(lead.age, 0, 86_400_000) || !isCounter(lead.t))
      return drop('bad-field', 'lead');
    if (lead.p !== undefined && (typeof lead.p !== 'number' || !Number.isFinite(lead.p) || Math.abs(lead.p) > MAX_PRIORITY))
      return drop('bad-field', 'lead');
    if (lead.n !== undefined && !isIntegerIn(lead.n, 0, 15)) return drop('bad-field', 'lead');
    const decoded: Lead = { h: lead.h, age: lead.age, t: lead.t };
    if (lead.p !== undefined) decoded.p = lead.p;
    if (lead.n !== undefined) decoded.n = lead.n;
    message.lead = decoded;
  }
  if (raw.health !== undefined) {
    const health = decodeHealth(raw.health);
    if (health === null) return drop('bad-field', 'health');
    message.health = health;
  }
  if (echo !== undefined && echo.length > 0) message.echo = echo;
  return { ok: true, message };
}

/**
 * The sender's health check: a known state, counts and rise/fall within their bounds, a
 * reason of printable text. Null when any of it is not so; unknown keys inside are ignored,
 * as at the top level, and not copied.
 */
function decodeHealth(raw: unknown): HealthWord | null {
  if (!isPlainObject(raw)) return null;
  const { s, f, p, rise, fall, e } = raw;
  if (s !== 'starting' && s !== 'passing' && s !== 'failing') return null;
  if (f !== undefined && !isIntegerIn(f, 0, MAX_HEALTH_COUNT)) return null;
  if (p !== undefined && !isIntegerIn(p, 0, MAX_HEALTH_COUNT)) return null;
  if (!isIntegerIn(rise, 1, MAX_HEALTH_RISE_FALL) || !isIntegerIn(fall, 1, MAX_HEALTH_RISE_FALL)) return null;
  if (e !== undefined && (typeof e !== 'string' || e.length > MAX_HEALTH_ERROR_CHARS || !HEALTH_ERROR_PATTERN.test(e))) return null;
  const health: HealthWord = { s, rise, fall };
  if (f) health.f = f;
  if (p) health.p = p;
  if (e !== undefined) health.e = e;
  return health;
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function isCounter(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The original sends 0/1; accept booleans too. Anything else is not a flag. */
function flag(value: unknown): boolean | undefined {
  if (value === 1 || value === true) return true;
  if (value === 0 || value === false) return false;
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Walk the parsed tree once, without recursion: refuse `__proto__` keys anywhere (a
 * later `Object.assign` or spread by user code would turn them into a prototype change),
 * `constructor.prototype` paths (the other deep-merge pollution gadget), and nesting deeper
 * than MAX_DATA_DEPTH (user code walks `data` recursively).
 */
function checkShape(root: Record<string, unknown>): DecodeResult | null {
  // Objects only, on two stacks, with indexed loops: this runs for every datagram, mostly in
  // a process too idle for the JIT to have optimized it, where a tuple per value, array
  // destructuring and iterators cost more than the walk itself. Same order as a walk of
  // every value, so the first violation found is the same.
  const nodes: object[] = [root];
  const depths: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop() as object;
    const depth = depths.pop() as number;
    if (depth > MAX_DATA_DEPTH) return drop('too-deep', `nesting deeper than ${MAX_DATA_DEPTH}`);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child: unknown = node[i];
        if (typeof child !== 'object' || child === null) continue;
        nodes.push(child);
        depths.push(depth + 1);
      }
      continue;
    }
    const keys = Object.keys(node);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (key === '__proto__') return drop('special-key', '__proto__');
      const child = (node as Record<string, unknown>)[key];
      if (typeof child !== 'object' || child === null) continue;
      if (key === 'constructor' && !Array.isArray(child) && Object.hasOwn(child, 'prototype')) {
        return drop('special-key', 'constructor.prototype');
      }
      nodes.push(child);
      depths.push(depth + 1);
    }
  }
  return null;
}

function drop(reason: DropReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}
