/**
 * The fuzzer: generated and mutated datagrams against the codec and against live cores.
 *
 * Two simulated clusters (a, b, c) run side by side: one open (no secret), one
 * authenticated. Their real traffic is captured as the corpus; every fuzz datagram is then
 * decoded with and without the key, and injected into every server of both clusters. The
 * oracles, checked after each datagram:
 *  - nothing throws; no prototype of the built-ins gains or loses a property;
 *  - whatever the codec accepts is a well-formed message that survives a re-encode;
 *  - every table stays prototype-free, well-formed and within max_servers, and the
 *    simulator's queue and the freshness memory stay bounded;
 *  - authenticated cluster: nothing observable changes and no event fires, ever (its
 *    servers' own traffic keeps flowing between batches).
 * The same seed gives the same datagrams, so a failure is reproducible from seed and index.
 */
import { isIP } from 'node:net';
import { createKeyring, seal, type Keyring } from '../src/wire/auth';
import { decodeWire, encode } from '../src/wire/codec';
import { parseAddress } from '../src/protocol/address';
import {
  HEALTH_ERROR_PATTERN,
  MAX_DATA_DEPTH,
  MAX_ECHOES,
  MAX_GOSSIP_ADDRESSES,
  MAX_HEALTH_COUNT,
  MAX_HEALTH_ERROR_CHARS,
  MAX_TERM,
  MAX_UPTIME_S,
  isValidHostname,
} from '../src/protocol/limits';
import type { JsonValue, Message, PeersMessage } from '../src/protocol/messages';
import { SimCluster } from './cluster';
import { Random } from './random';

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Called every `progressEvery` datagrams. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
}

export interface FuzzReport {
  seed: number;
  count: number;
  ms: number;
  /** Datagrams made by each generator. */
  generators: Record<string, number>;
  /** Codec outcomes without and with the key: 'accepted' or the drop reason. */
  openCodec: Record<string, number>;
  authCodec: Record<string, number>;
  /** What the cores did with the accepted ones (per server): 'applied' or the drop reason. */
  openCore: Record<string, number>;
  authCore: Record<string, number>;
  /** Peak sizes seen: rows in any table, instances remembered, queued simulator items. */
  peakTable: number;
  peakKnownInstances: number;
  peakPending: number;
}

export class FuzzFailure extends Error {
  constructor(
    readonly seed: number,
    readonly index: number,
    readonly generator: string,
    readonly datagram: Buffer,
    problem: string,
  ) {
    super(
      `fuzz failure (seed ${seed}, datagram #${index}, ${generator}): ${problem}\n  datagram (${datagram.length} bytes, hex): ${datagram.subarray(0, 256).toString('hex')}${datagram.length > 256 ? '…' : ''}`,
    );
    this.name = 'FuzzFailure';
  }
}

const SECRET = 'fuzz cluster secret: 5b0d6c0e1f9a';
const WRONG_SECRET = 'a secret the attacker guessed';
const OLD_SECRET = 'the key before the last rotation';
const HOSTS = ['a', 'b', 'c'];
const MAX_SERVERS = 24;
const BATCH = 400;
const TICK_MS = 1000;
const MAX_PENDING = 20_000;
const INSTANCE_ID = /^[0-9a-f]{8,64}$/;
const ECHO = /^[0-9a-f]{8,64}:(?:0|[1-9][0-9]{0,15})$/;

/** Values that have broken JSON handlers somewhere: types, sizes, special names. */
const HOSTILE_JSON = [
  'null',
  'true',
  'false',
  '0',
  '-1',
  '1.5',
  '-0',
  '1e308',
  '9007199254740993',
  '""',
  '"a"',
  '"__proto__"',
  '"constructor"',
  '"prototype"',
  '"toString"',
  `"${'x'.repeat(300)}"`,
  '"0.0.0.0"',
  '"::1"',
  '"10.0.0.1"',
  '"999.999.999.999"',
  '"\\u0000"',
  '"\\ud800"',
  '"a b"',
  '"../x"',
  '[]',
  '[[[[[]]]]]',
  '{}',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"toString":1,"hasOwnProperty":2,"valueOf":3}',
  '[1,"2",{"3":[4]}]',
  '"0123456789abcdef"',
  '"0123456789abcdef:1"',
  '["0123456789abcdef:1"]',
];
const FIELDS = [
  'hostname',
  'ip',
  'master',
  'eligible',
  'uptime',
  'data',
  'action',
  'iid',
  'seq',
  'echo',
  'for',
  'term',
  'prio',
  'handoff',
  'cid',
  'ckpt',
  'tick',
  'beats',
  'pace',
  'lead',
  'health',
  'target',
  'to',
  'type',
  'payload',
  'rid',
  're',
];
const INTERESTING_BYTES = [0x00, 0xff, 0x7b, 0x7d, 0x22, 0x5c, 0x3a, 0x2c, 0x7f, 0x80, 0xc0, 0x0a, 0x50];

type Generator = (random: Random, corpus: Corpus) => Buffer;

interface Corpus {
  open: Buffer[];
  auth: Buffer[];
  /** Open-format JSON objects from the open corpus, for field mutations. */
  objects: Array<Record<string, unknown>>;
  /** Instance ids seen on the wire (live and dead). */
  iids: string[];
  wrong: Keyring;
  old: Keyring;
}

const GENERATORS: Record<string, Generator> = {
  replay: (r, c) => r.pick(r.chance(0.5) ? c.open : c.auth),
  bitflip: (r, c) => {
    const out = Buffer.from(r.pick(r.chance(0.5) ? c.open : c.auth));
    for (let n = r.int(1, 8); n > 0 && out.length > 0; n--) {
      const at = r.int(0, out.length - 1);
      out[at] = (out[at] as number) ^ (1 << r.int(0, 7));
    }
    return out;
  },
  bytes: (r, c) => {
    const out = Buffer.from(r.pick(r.chance(0.5) ? c.open : c.auth));
    for (let n = r.int(1, 4); n > 0 && out.length > 0; n--) out[r.int(0, out.length - 1)] = r.pick(INTERESTING_BYTES);
    return out;
  },
  truncate: (r, c) => {
    const source = r.pick(r.chance(0.5) ? c.open : c.auth);
    return source.subarray(0, r.int(0, source.length - 1));
  },
  extend: (r, c) => {
    const source = r.pick(r.chance(0.5) ? c.open : c.auth);
    const tail = r.chance(0.5) ? randomBytes(r, r.int(1, 64)) : source.subarray(r.int(0, source.length - 1));
    return Buffer.concat([source, tail]);
  },
  splice: (r, c) => {
    const a = r.pick(r.chance(0.5) ? c.open : c.auth);
    const b = r.pick(r.chance(0.5) ? c.open : c.auth);
    return Buffer.concat([a.subarray(0, r.int(0, a.length)), b.subarray(r.int(0, b.length))]);
  },
  field: (r, c) => {
    const body = Buffer.from(mutateFields(r, r.pick(c.objects)) + (r.chance(0.8) ? '\n' : ''), 'utf8');
    // An outsider can send it open, or sealed with a key it has (a guessed one, an old one).
    const how = r.int(0, 3);
    return how === 0 ? seal(body, c.wrong) : how === 1 ? seal(body, c.old) : body;
  },
  structure: (r) => Buffer.from(JSON.stringify(randomJson(r, 0)), 'utf8'),
  garbage: (r) => randomBytes(r, r.chance(0.01) ? r.int(32_000, 40_000) : r.int(0, 600)),
  resign: (r, c) => {
    // An authentic body re-signed with a key the attacker holds; the key id says so or lies.
    const source = r.pick(c.auth);
    const out = seal(source.subarray(40), r.chance(0.5) ? c.wrong : c.old);
    if (r.chance(0.5)) source.copy(out, 4, 4, 8);
    return out;
  },
  forge: (r, c) => {
    // Well-formed open-format packets with plausible fields: what the open core must bear
    // (forged restarts, claims, shutdowns, namesakes, a table filling past max_servers).
    const hostname = r.chance(0.4) ? r.pick(HOSTS) : `x${r.int(0, 2 * MAX_SERVERS)}`;
    const iid = r.chance(0.5) ? r.pick(c.iids) : r.chance(0.8) ? r.hex(16) : undefined;
    const seq = r.chance(0.5) ? r.int(0, 50) : r.int(0, 2 ** 40);
    if (r.chance(0.05)) {
      const addrs = Array.from({ length: r.int(0, 6) }, () =>
        r.pick(['10.0.0.7:3014', '[::1]:3014', '127.0.0.1:1', '999.1.1.1:3014', '10.0.0.8', 'x:y']),
      );
      return encode({ action: 'peers', hostname, addrs });
    }
    const action = r.pick(['heartbeat', 'heartbeat', 'heartbeat', 'shutdown', 'hello', 'promote', 'message'] as const);
    const other = r.chance(0.5) ? r.pick(HOSTS) : `x${r.int(0, 9)}`;
    let message: Message;
    if (action === 'heartbeat') {
      message = {
        action,
        hostname,
        ip: r.pick(['', '10.0.0.7', '::1']),
        master: r.chance(0.3),
        eligible: r.chance(0.7),
        uptime: r.int(0, 1e6),
        data: r.chance(0.5) ? {} : { v: nest(r, r.int(0, 10)) },
      };
      if (r.chance(0.3)) message.term = r.int(0, 2 ** 40);
      if (r.chance(0.2)) message.prio = r.int(-1e6, 1e6);
      if (r.chance(0.1)) message.handoff = other;
      if (r.chance(0.1)) message.ckpt = { t: r.int(0, 2 ** 40), v: r.int(0, 9), d: nest(r, r.int(0, 5)) };
      if (r.chance(0.2)) message.echo = [`${r.pick(c.iids)}:${r.int(0, 20)}`];
      // A health word at and past its limits: the out-of-range ones must be dropped.
      if (r.chance(0.2))
        message.health = {
          s: r.pick(['starting', 'passing', 'failing', 'rising', ''] as const) as 'passing',
          rise: r.pick([1, 2, 1000, 0, 1001]),
          fall: r.pick([1, 3, 1000, 0, 1.5]),
          ...(r.chance(0.5) ? { f: r.pick([1, MAX_HEALTH_COUNT, MAX_HEALTH_COUNT + 1, -1]) } : {}),
          ...(r.chance(0.3) ? { p: r.pick([1, 2, MAX_HEALTH_COUNT]) } : {}),
          ...(r.chance(0.3)
            ? {
                e: r.pick([
                  'disk full',
                  'x'.repeat(MAX_HEALTH_ERROR_CHARS),
                  'x'.repeat(MAX_HEALTH_ERROR_CHARS + 1),
                  'a\u001b[2Jb',
                  '\u202e',
                  '',
                ]),
              }
            : {}),
        };
    } else if (action === 'promote') {
      message = { action, hostname, target: other };
    } else if (action === 'message') {
      message = { action, hostname, to: r.chance(0.5) ? '*' : other, type: 'job', payload: nest(r, r.int(0, 5)) };
      if (r.chance(0.3)) message.rid = r.hex(8);
      if (r.chance(0.3)) message.re = r.hex(8);
    } else {
      message = { action, hostname };
      if (message.action === 'hello' && r.chance(0.3)) message.for = r.pick(c.iids);
    }
    if (iid !== undefined) message.iid = iid;
    if (iid !== undefined || r.chance(0.2)) message.seq = seq;
    if (r.chance(0.05)) message.cid = 'other-cluster';
    return encode(message);
  },
  headerswap: (r, c) => Buffer.concat([r.pick(c.auth).subarray(0, 40), r.pick(c.auth).subarray(40)]),
  sealedEdit: (r, c) => {
    // Edit the JSON of an authentic datagram in place (seq, master, action), MAC untouched.
    const source = r.pick(c.auth);
    const text = source.subarray(40).toString('latin1');
    const edited = text
      .replace(/"seq":\d+/, `"seq":${r.int(0, 2 ** 40)}`)
      .replace(/"master":[01]/, `"master":${r.int(0, 1)}`)
      .replace(r.chance(0.3) ? /"action":"heartbeat"/ : /^$/, '"action":"shutdown"');
    return Buffer.concat([source.subarray(0, 40), Buffer.from(edited, 'latin1')]);
  },
};

function randomBytes(r: Random, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = r.int(0, 255);
  return out;
}

function hostile(r: Random): unknown {
  return JSON.parse(r.pick(HOSTILE_JSON)) as unknown;
}

/** Swap, replace, drop, add and rename fields of a real packet, then serialize it (raw text edits too). */
function mutateFields(r: Random, original: Record<string, unknown>): string {
  const object: Record<string, unknown> = JSON.parse(JSON.stringify(original)) as Record<string, unknown>;
  for (let n = r.int(1, 3); n > 0; n--) {
    const keys = Object.keys(object);
    switch (r.int(0, 5)) {
      case 0: {
        const [x, y] = [r.pick(keys), r.pick(keys)] as [string, string];
        [object[x], object[y]] = [object[y], object[x]];
        break;
      }
      case 1:
        object[r.pick(FIELDS)] = hostile(r);
        break;
      case 2:
        delete object[r.pick(keys)];
        break;
      case 3:
        object[r.pick(['evil', 'self', 'locked', 'now', 'servers', 'constructor', 'toString'])] = hostile(r);
        break;
      case 4:
        object.data = nest(r, r.int(1, 60));
        break;
      case 5:
        object.seq = r.pick([0, 1, 2 ** 53, -1, 1.5, (typeof object.seq === 'number' ? object.seq : 0) + r.int(-3, 3)]);
        break;
    }
  }
  let text = JSON.stringify(object);
  if (r.chance(0.1)) text = text.replace(/^\{/, '{"__proto__":{"master":1},');
  if (r.chance(0.05)) text = text.replace(/"hostname"/, '"hostname":"zz","hostname"');
  return text;
}

function nest(r: Random, depth: number): JsonValue {
  let value: JsonValue = r.chance(0.5) ? 1 : 'x';
  for (let i = 0; i < depth; i++) value = r.chance(0.5) ? [value] : { k: value };
  return value;
}

function randomJson(r: Random, depth: number): JsonValue {
  const kind = depth > 6 ? r.int(0, 3) : r.int(0, 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1e300, 3.5, r.int(0, 1e6)]);
    case 3:
      return r.pick(['', 'a', 'heartbeat', 'shutdown', 'hello', '__proto__', 'x'.repeat(r.int(0, 200)), '127.0.0.1']);
    case 4:
      return Array.from({ length: r.int(0, 5) }, () => randomJson(r, depth + 1));
    default: {
      const out: Record<string, JsonValue> = {};
      for (let n = r.int(0, 8); n > 0; n--) out[r.pick([...FIELDS, 'k', 'constructor', 'prototype'])] = randomJson(r, depth + 1);
      if (depth === 0 && r.chance(0.5)) out.action = r.pick(['heartbeat', 'shutdown', 'hello']);
      return out;
    }
  }
}

// ---- oracles -------------------------------------------------------------------------

/** Why `message` is not a well-formed decoded message, or null. */
function malformed(message: Message): string | null {
  const common = ['action', 'hostname', 'iid', 'seq', 'cid'];
  const allowed = {
    heartbeat: [
      ...common,
      'ip',
      'master',
      'eligible',
      'uptime',
      'data',
      'echo',
      'term',
      'prio',
      'handoff',
      'ckpt',
      'tick',
      'beats',
      'pace',
      'lead',
      'health',
    ],
    shutdown: common,
    hello: [...common, 'for'],
    promote: [...common, 'target'],
    message: [...common, 'to', 'type', 'payload', 'rid', 're'],
  }[message.action];
  if (!allowed) return 'action';
  for (const key of Object.keys(message)) if (!allowed.includes(key)) return `unexpected field ${key}`;
  if (!isValidHostname(message.hostname)) return 'hostname';
  if (message.iid !== undefined && !INSTANCE_ID.test(message.iid)) return 'iid';
  if (message.seq !== undefined && !(Number.isSafeInteger(message.seq) && message.seq >= 0)) return 'seq';
  if (message.action === 'hello' && message.for !== undefined && !INSTANCE_ID.test(message.for)) return 'for';
  if (message.action === 'promote' && !isValidHostname(message.target)) return 'target';
  if (message.action === 'message') return message.to !== '*' && !isValidHostname(message.to) ? 'to' : unsafeValue(message.payload);
  if (message.action !== 'heartbeat') return null;
  if (message.ckpt !== undefined && unsafeValue(message.ckpt.d)) return 'ckpt';
  if (typeof message.ip !== 'string' || (message.ip !== '' && isIP(message.ip) === 0)) return 'ip';
  if (typeof message.master !== 'boolean' || typeof message.eligible !== 'boolean') return 'flags';
  if (!Number.isFinite(message.uptime) || message.uptime < 0 || message.uptime > MAX_UPTIME_S) return 'uptime';
  if (message.term !== undefined && !(Number.isSafeInteger(message.term) && message.term >= 0 && message.term <= MAX_TERM)) return 'term';
  if (message.tick !== undefined && !(Number.isInteger(message.tick) && message.tick >= 10 && message.tick <= 86_400_000)) return 'tick';
  if (message.beats !== undefined && !(Number.isInteger(message.beats) && message.beats >= 1 && message.beats <= 1000)) return 'beats';
  if (message.pace !== undefined && !(Number.isInteger(message.pace) && message.pace >= 10 && message.pace <= 86_400_000)) return 'pace';
  const lead = message.lead;
  if (lead !== undefined) {
    if (Object.keys(lead).some((key) => !['h', 'age', 't', 'p', 'n'].includes(key)) || !isValidHostname(lead.h)) return 'lead';
    if (!(Number.isInteger(lead.age) && lead.age >= 0 && lead.age <= 86_400_000) || !(Number.isSafeInteger(lead.t) && lead.t >= 0))
      return 'lead';
    if (lead.p !== undefined && !(Number.isFinite(lead.p) && Math.abs(lead.p) <= 1_000_000)) return 'lead';
    if (lead.n !== undefined && !(Number.isInteger(lead.n) && lead.n >= 0 && lead.n <= 15)) return 'lead';
  }
  const health = message.health;
  if (health !== undefined) {
    if (Object.keys(health).some((key) => !['s', 'f', 'p', 'rise', 'fall', 'e'].includes(key))) return 'health';
    if (!['starting', 'passing', 'failing'].includes(health.s)) return 'health';
    const count = (n: unknown, min: number, max: number): boolean => Number.isInteger(n) && (n as number) >= min && (n as number) <= max;
    if (!count(health.rise, 1, 1000) || !count(health.fall, 1, 1000)) return 'health';
    if (
      (health.f !== undefined && !count(health.f, 1, MAX_HEALTH_COUNT)) ||
      (health.p !== undefined && !count(health.p, 1, MAX_HEALTH_COUNT))
    )
      return 'health';
    if (
      health.e !== undefined &&
      !(typeof health.e === 'string' && health.e.length <= MAX_HEALTH_ERROR_CHARS && HEALTH_ERROR_PATTERN.test(health.e))
    )
      return 'health';
  }
  if (message.echo !== undefined && (message.echo.length > MAX_ECHOES || !message.echo.every((e) => ECHO.test(e)))) return 'echo';
  return unsafeTree(message.data);
}

function malformedGossip(gossip: PeersMessage): string | null {
  if (Object.keys(gossip).some((key) => !['action', 'hostname', 'addrs'].includes(key))) return 'unexpected gossip field';
  if (!isValidHostname(gossip.hostname)) return 'gossip hostname';
  if (gossip.addrs.length > MAX_GOSSIP_ADDRESSES || !gossip.addrs.every((a) => parseAddress(a) !== null)) return 'gossip addrs';
  return null;
}

/** A JSON tree a user may walk and merge: plain, shallow enough, no pollution gadget. */
function unsafeTree(root: unknown): string | null {
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return 'data is not a plain object';
  return unsafeValue(root);
}

function unsafeValue(root: unknown): string | null {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth > MAX_DATA_DEPTH) return 'data too deep';
    const proto = Object.getPrototypeOf(node);
    if (proto !== Object.prototype && proto !== Array.prototype) return 'data node with a foreign prototype';
    for (const key of Object.keys(node)) {
      if (key === '__proto__') return 'data holds __proto__';
      const child = (node as Record<string, unknown>)[key];
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype'))
        return 'data holds constructor.prototype';
      stack.push([child, depth + 1]);
    }
  }
  return null;
}

const BUILTINS = [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype, Boolean.prototype];
function builtinShape(): string {
  return BUILTINS.map((proto) => Object.getOwnPropertyNames(proto).join(',')).join('|');
}

/** Why a live server's table is out of shape, or null. */
function badTable(sim: SimCluster): string | null {
  for (const node of sim.live()) {
    const table = node.core.table;
    if (Object.getPrototypeOf(table) !== null) return `${node.hostname}: table has a prototype`;
    const rows = Object.keys(table);
    if (rows.length > MAX_SERVERS) return `${node.hostname}: ${rows.length} rows > max_servers`;
    for (const key of rows) {
      const row = table[key];
      if (!row || row.hostname !== key || !isValidHostname(key)) return `${node.hostname}: bad row key ${key}`;
      if (Object.getPrototypeOf(row) !== Object.prototype) return `${node.hostname}: row ${key} prototype`;
      if (row.self !== (key === node.core.hostname)) return `${node.hostname}: row ${key} self flag`;
      if (typeof row.master !== 'boolean' || typeof row.eligible !== 'boolean' || typeof row.locked !== 'boolean')
        return `${node.hostname}: row ${key} flags`;
      if (!Number.isFinite(row.uptime) || !Number.isFinite(row.now)) return `${node.hostname}: row ${key} numbers`;
      const tree = unsafeTree(row.data);
      if (tree) return `${node.hostname}: row ${key} ${tree}`;
    }
    if (node.core.master !== (node.core.masterHostname === node.core.hostname && node.core.masterHostname !== '')) {
      return `${node.hostname}: master flag and masterHostname disagree`;
    }
  }
  return null;
}

/**
 * What an application sees on every server. The own row's `now` and `uptime` are left out:
 * they are refreshed when the server sends a heartbeat, and a hello from an unknown instance
 * is answered (at most once per holdoff) even when it turns out to be a replay.
 */
function observable(sim: SimCluster): string {
  return JSON.stringify(
    sim
      .live()
      .map((n) => [
        n.core.master,
        n.core.slave,
        n.core.masterHostname,
        Object.values(n.core.table).map((row) => (row.self ? { ...row, now: 0, uptime: 0 } : row)),
      ]),
  );
}

// ---- the run -------------------------------------------------------------------------

function settledCluster(seed: number, secret?: string): SimCluster {
  const sim = new SimCluster(
    secret === undefined ? { seed, tickMs: TICK_MS, maxServers: MAX_SERVERS } : { seed, tickMs: TICK_MS, maxServers: MAX_SERVERS, secret },
  );
  sim.add('a', { data: { jobs: [1, 2, 3], name: 'alpha', nested: { deep: { ok: true } } } });
  sim.add('b');
  sim.add('c', { data: { load: 0.5 } });
  return sim;
}

function buildCorpus(seed: number): { corpus: Corpus; open: SimCluster; auth: SimCluster } {
  const open = settledCluster(seed);
  const auth = settledCluster(seed, SECRET);
  const corpus: Corpus = { open: [], auth: [], objects: [], iids: [], wrong: createKeyring(WRONG_SECRET), old: createKeyring(OLD_SECRET) };
  open.onDatagram = (_from, datagram) => corpus.open.push(datagram);
  auth.onDatagram = (_from, datagram) => corpus.auth.push(datagram);
  for (const sim of [open, auth]) {
    sim.runFor(5 * TICK_MS);
    // Restarts (graceful and not) put shutdowns, hellos and echoes into the capture, and
    // leave instances that are dead by the time their packets come back.
    sim.shutdown('c');
    sim.restart('c');
    sim.runFor(3 * TICK_MS);
    sim.restart('b');
    sim.runFor(5 * TICK_MS);
    sim.onDatagram = null;
  }
  // b restarts once more: a server that never heard most of the captured instances.
  auth.restart('b');
  auth.runFor(5 * TICK_MS);
  for (const datagram of corpus.open) corpus.objects.push(JSON.parse(datagram.toString('utf8')) as Record<string, unknown>);
  corpus.iids = [...new Set(corpus.objects.map((object) => object.iid).filter((iid): iid is string => typeof iid === 'string'))];
  for (const sim of [open, auth]) for (const node of sim.live()) corpus.iids.push(node.core.instanceId);
  return { corpus, open, auth };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export function fuzz(options: FuzzOptions): FuzzReport {
  const started = performance.now();
  const random = new Random(options.seed);
  const { corpus, open, auth } = buildCorpus(options.seed);
  const keyring = createKeyring(SECRET);
  const names = Object.keys(GENERATORS);
  const report: FuzzReport = {
    seed: options.seed,
    count: options.count,
    ms: 0,
    generators: {},
    openCodec: {},
    authCodec: {},
    openCore: {},
    authCore: {},
    peakTable: 0,
    peakKnownInstances: 0,
    peakPending: 0,
  };
  const shape = builtinShape();
  let authState = observable(auth);
  let authEvents = auth.events.length;
  if (auth.agreedMaster() !== 'a' || open.agreedMaster() !== 'a') throw new Error('fuzz clusters did not settle on a');

  for (let index = 0; index < options.count; index++) {
    const name = names[index % names.length] as string;
    const datagram = (GENERATORS[name] as Generator)(random, corpus);
    bump(report.generators, name);
    const fail = (problem: string): never => {
      throw new FuzzFailure(options.seed, index, name, datagram, problem);
    };
    try {
      for (const [counts, limits] of [
        [report.openCodec, {}],
        [report.authCodec, { keyring }],
      ] as const) {
        // What the shell decodes: core messages and the unicast transport's gossip.
        const result = decodeWire(datagram, limits);
        if (!result.ok) {
          bump(counts, result.reason);
          continue;
        }
        const accepted = 'gossip' in result ? result.gossip : result.message;
        bump(counts, 'gossip' in result ? 'gossip' : 'accepted');
        const problem = 'gossip' in result ? malformedGossip(result.gossip) : malformed(result.message);
        if (problem) fail(`codec accepted a malformed message (${problem})`);
        const again = decodeWire(encode(accepted, 'keyring' in limits ? keyring : null), limits);
        const back = again.ok ? ('gossip' in again ? again.gossip : again.message) : null;
        if (JSON.stringify(back) !== JSON.stringify(accepted)) fail('accepted message does not survive a re-encode');
      }
      for (const [sim, counts] of [
        [open, report.openCore],
        [auth, report.authCore],
      ] as const) {
        const drops = { ...sim.drops };
        const applied = sim.events.length;
        sim.inject(datagram, { address: `10.66.${random.int(0, 255)}.${random.int(1, 254)}` });
        for (const [reason, n] of Object.entries(sim.drops))
          if (n !== (drops[reason] ?? 0) && !isCodecReason(reason)) counts[reason] = (counts[reason] ?? 0) + n - (drops[reason] ?? 0);
        if (sim.events.length !== applied) bump(counts, 'events');
      }
    } catch (err) {
      if (err instanceof FuzzFailure) throw err;
      fail(`threw: ${(err as Error).stack ?? err}`);
    }
    if (({} as Record<string, unknown>).polluted !== undefined || (index % 64 === 0 && builtinShape() !== shape))
      fail('a built-in prototype changed');
    const tableProblem = badTable(open) ?? badTable(auth);
    if (tableProblem) fail(tableProblem);
    if (observable(auth) !== authState) fail('the authenticated cluster changed state');
    if (auth.events.length !== authEvents)
      fail(
        `the authenticated cluster emitted ${auth.events
          .slice(authEvents)
          .map((e) => `${e.host}:${e.event.type}`)
          .join(', ')}`,
      );
    for (const sim of [open, auth]) {
      report.peakPending = Math.max(report.peakPending, sim.pending);
      if (sim.pending > MAX_PENDING) fail(`simulator queue grew to ${sim.pending}`);
      for (const node of sim.live()) {
        report.peakTable = Math.max(report.peakTable, node.core.size);
        report.peakKnownInstances = Math.max(report.peakKnownInstances, node.core.knownInstances);
        if (node.core.knownInstances > 2 * MAX_SERVERS + 64) fail(`${node.hostname} remembers ${node.core.knownInstances} instances`);
      }
    }

    if ((index + 1) % BATCH === 0) {
      // Let time pass: deadlines fire, forged rows expire, real heartbeats flow.
      const step = random.int(0, 1500);
      try {
        open.runFor(step);
        auth.runFor(step);
      } catch (err) {
        fail(`while time passed after it: ${(err as Error).message}`);
      }
      if (auth.agreedMaster() !== 'a') fail('the authenticated cluster lost its master');
      if (auth.events.length !== authEvents)
        fail(
          `the authenticated cluster emitted ${auth.events
            .slice(authEvents)
            .map((e) => `${e.host}:${e.event.type}`)
            .join(', ')}`,
        );
      authState = observable(auth);
      authEvents = auth.events.length;
    }
    if (options.onProgress && (index + 1) % (options.progressEvery ?? 10_000) === 0) options.onProgress(index + 1);
  }
  report.ms = performance.now() - started;
  return report;
}

function isCodecReason(reason: string): boolean {
  return !['stale', 'unverified', 'yielded', 'table-full'].includes(reason);
}
