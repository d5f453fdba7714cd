/**
 * Hostile input: one named case per kind of bad datagram an attacker on the LAN can send,
 * each through the codec and core of every server of a settled cluster (a master, b and c
 * slaves), asserting the exact outcome: the reason it was dropped, the table and the master
 * unchanged on every server, nothing thrown, no prototype touched.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import { createKeyring } from '../src/wire/auth';
import { decode, encode } from '../src/wire/codec';
import type { HeartbeatMessage, Message } from '../src/protocol/messages';

const TICK = 1000;
const TOCK = 3000;
const SECRET = 'hostile-suite cluster secret, 32+ chars';
const KEYRING = createKeyring(SECRET);
const HOSTS = ['a', 'b', 'c'];

function settled(secret?: string, maxServers?: number): SimCluster {
  const options: ConstructorParameters<typeof SimCluster>[0] = { tickMs: TICK, checkBeats: 3, latencyMs: 1 };
  if (secret !== undefined) options.secret = secret;
  if (maxServers !== undefined) options.maxServers = maxServers;
  const sim = new SimCluster(options);
  for (const host of HOSTS) sim.add(host);
  assert.notEqual(
    sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
    null,
  );
  sim.runFor(TICK / 2);
  return sim;
}

/** Everything an application can observe on every server. */
function observable(sim: SimCluster): string {
  return JSON.stringify(
    sim.live().map((node) => ({
      node: node.hostname,
      master: node.core.master,
      slave: node.core.slave,
      masterHostname: node.core.masterHostname,
      table: Object.entries(node.core.table),
    })),
  );
}

const prototypes = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
function prototypeState(): string {
  return prototypes.map((proto) => Object.getOwnPropertyNames(proto).sort().join(',')).join('|');
}

/** Raw JSON text as an attacker types it (no validation, any key, any order). */
function json(text: string): Buffer {
  return Buffer.from(text + '\n', 'utf8');
}

function heartbeatText(fields: Record<string, string>): string {
  const base: Record<string, string> = {
    hostname: '"zz-forged"',
    ip: '"10.6.6.6"',
    master: '0',
    eligible: '1',
    uptime: '5',
    data: '{}',
    action: '"heartbeat"',
    ...fields,
  };
  return (
    '{' +
    Object.entries(base)
      .filter(([, value]) => value !== undefined && value !== '<omit>')
      .map(([key, value]) => `${JSON.stringify(key)}:${value}`)
      .join(',') +
    '}'
  );
}

/**
 * Inject `datagram` into every server, then let the cluster run for a tock: the datagram
 * is dropped by each for `reason`, and nothing anyone can observe changes, then or later.
 */
function assertDropped(sim: SimCluster, datagram: Buffer, reason: string): void {
  const before = observable(sim);
  const events = sim.events.length;
  const protos = prototypeState();
  const dropped = sim.drops[reason] ?? 0;
  assert.doesNotThrow(() => sim.inject(datagram));
  assert.equal((sim.drops[reason] ?? 0) - dropped, HOSTS.length, `not dropped as ${reason} by every server: ${JSON.stringify(sim.drops)}`);
  assert.equal(observable(sim), before, 'state changed');
  assert.equal(sim.events.length, events, 'events emitted');
  assert.equal(prototypeState(), protos, 'a prototype changed');
  sim.runFor(TOCK);
  assert.equal(sim.agreedMaster(), 'a', 'master changed later');
  assert.deepEqual(
    sim.events.slice(events).map((e) => `${e.host}:${e.event.type}`),
    [],
    'events emitted later',
  );
  assert.equal(prototypeState(), protos, 'a prototype changed later');
}

/** Each kind of malformed datagram, as text or bytes, and why every server must drop it. */
const MALFORMED: Array<[name: string, datagram: Buffer, reason: string]> = [
  ['garbage bytes', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x7b, 0x22, 0x80, 0xfe]), 'not-json'],
  ['empty datagram', Buffer.alloc(0), 'not-json'],
  ['a lone "{"', json('{'), 'not-json'],
  ['truncated heartbeat', json(heartbeatText({}).slice(0, 40)), 'not-json'],
  ['JSON that is an array', json('[{"hostname":"zz","action":"heartbeat"}]'), 'not-json'],
  ['JSON with a trailing second object', json(heartbeatText({}) + '{}'), 'not-json'],
  ['deep nesting in data (1000 levels)', json(heartbeatText({ data: '{"x":'.repeat(1000) + '1' + '}'.repeat(1000) })), 'too-deep'],
  ['deep nesting in an unknown field (arrays)', json(heartbeatText({ extra: '['.repeat(500) + ']'.repeat(500) })), 'too-deep'],
  ['oversized datagram (40 KB)', json(heartbeatText({ data: `{"blob":"${'x'.repeat(40_000)}"}` })), 'oversized'],
  ['__proto__ key at the top level', json('{"__proto__":{"master":1},' + heartbeatText({}).slice(1)), 'special-key'],
  ['__proto__ key inside data', json(heartbeatText({ data: '{"a":{"__proto__":{"polluted":true}}}' })), 'special-key'],
  ['constructor.prototype inside data', json(heartbeatText({ data: '{"constructor":{"prototype":{"polluted":true}}}' })), 'special-key'],
  ['action missing', json(heartbeatText({ action: '<omit>' })), 'bad-field'],
  ['action not a string', json(heartbeatText({ action: '1' })), 'bad-field'],
  ['hostname missing', json(heartbeatText({ hostname: '<omit>' })), 'bad-field'],
  ['hostname a number', json(heartbeatText({ hostname: '42' })), 'bad-field'],
  ['hostname empty', json(heartbeatText({ hostname: '""' })), 'bad-field'],
  ['hostname "__proto__"', json(heartbeatText({ hostname: '"__proto__"' })), 'bad-field'],
  ['hostname "constructor"', json(heartbeatText({ hostname: '"constructor"' })), 'bad-field'],
  ['hostname "hasOwnProperty"', json(heartbeatText({ hostname: '"hasOwnProperty"' })), 'bad-field'],
  ['hostname with a space', json(heartbeatText({ hostname: '"evil host"' })), 'bad-field'],
  ['hostname with a control character', json(heartbeatText({ hostname: '"evil\\u0000host"' })), 'bad-field'],
  ['hostname with a path', json(heartbeatText({ hostname: '"../../etc/passwd"' })), 'bad-field'],
  ['hostname of 254 characters', json(heartbeatText({ hostname: `"${'h'.repeat(254)}"` })), 'bad-field'],
  ['hostname not ASCII', json(heartbeatText({ hostname: '"ｍａｌｌｏｒｙ"' })), 'bad-field'],
  ['hostname an object', json(heartbeatText({ hostname: '{"toString":"a"}' })), 'bad-field'],
  ['ip a number', json(heartbeatText({ ip: '167772161' })), 'bad-field'],
  ['ip not an address', json(heartbeatText({ ip: '"localhost; rm -rf /"' })), 'bad-field'],
  ['ip out of range', json(heartbeatText({ ip: '"999.1.1.1"' })), 'bad-field'],
  ['master 2', json(heartbeatText({ master: '2' })), 'bad-field'],
  ['master "1" (a string)', json(heartbeatText({ master: '"1"' })), 'bad-field'],
  ['master null', json(heartbeatText({ master: 'null' })), 'bad-field'],
  ['eligible "yes"', json(heartbeatText({ eligible: '"yes"' })), 'bad-field'],
  ['uptime negative', json(heartbeatText({ uptime: '-1' })), 'bad-field'],
  ['uptime a string', json(heartbeatText({ uptime: '"5"' })), 'bad-field'],
  ['uptime infinite (1e999)', json(heartbeatText({ uptime: '1e999' })), 'bad-field'],
  ['data an array', json(heartbeatText({ data: '[1,2,3]' })), 'bad-field'],
  ['data a string', json(heartbeatText({ data: '"{}"' })), 'bad-field'],
  ['iid not hex', json(heartbeatText({ iid: '"NOT-AN-ID!"', seq: '1' })), 'bad-field'],
  ['iid a number', json(heartbeatText({ iid: '12345678', seq: '1' })), 'bad-field'],
  ['seq negative', json(heartbeatText({ iid: '"0123456789abcdef"', seq: '-1' })), 'bad-field'],
  ['seq a fraction', json(heartbeatText({ iid: '"0123456789abcdef"', seq: '1.5' })), 'bad-field'],
  ['seq beyond 2^53', json(heartbeatText({ iid: '"0123456789abcdef"', seq: '1e300' })), 'bad-field'],
  ['pid zero', json(heartbeatText({ pid: '0' })), 'bad-field'],
  ['pid beyond 32 bits', json(heartbeatText({ pid: '4294967296' })), 'bad-field'],
  ['pid a string', json(heartbeatText({ pid: '"1"' })), 'bad-field'],
  ['echo not a list', json(heartbeatText({ echo: '"0123456789abcdef:1"' })), 'bad-field'],
  ['echo with a bad entry', json(heartbeatText({ echo: '["0123456789abcdef:1", {"x":1}]' })), 'bad-field'],
  ['echo with 33 entries', json(heartbeatText({ echo: JSON.stringify(new Array(33).fill('0123456789abcdef:1')) })), 'bad-field'],
  ['hello with a bad target', json('{"hostname":"zz-forged","action":"hello","for":"ALL"}'), 'bad-field'],
  ['shutdown with hostname a list', json('{"hostname":["a"],"action":"shutdown"}'), 'bad-field'],
];

describe('hostile datagrams without a secret (the open format)', () => {
  for (const [name, datagram, reason] of MALFORMED) {
    test(`${name}: dropped as ${reason}, nothing changes`, () => {
      assertDropped(settled(), datagram, reason);
    });
  }

  test('unknown action: ignored (a newer server may speak it), nothing changes', () => {
    assertDropped(settled(), json('{"hostname":"a","action":"takeover","master":1}'), 'unknown-action');
  });

  test('an authenticated datagram from another cluster: dropped as unexpected-auth, nothing changes', () => {
    const forged: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: 'zz',
      ip: '',
      master: true,
      eligible: true,
      uptime: 0,
      data: {},
      iid: '00000000',
      seq: 1,
    };
    assertDropped(settled(), encode(forged, createKeyring('some other cluster')), 'unexpected-auth');
  });

  test('data over max_data_bytes: dropped as data-oversized', () => {
    const datagram = json(heartbeatText({ data: `{"blob":"${'x'.repeat(2000)}"}` }));
    const result = decode(datagram, { maxDataBytes: 1024 });
    assert.equal(result.ok ? 'accepted' : result.reason, 'data-oversized');
    assert.equal(decode(datagram, { maxDataBytes: 4096 }).ok, true, 'the same heartbeat fits a larger limit');
  });

  test('data keys named like Object.prototype members are plain data: accepted, no prototype touched, expire', () => {
    const sim = settled();
    const protos = prototypeState();
    sim.inject(json(heartbeatText({ data: '{"toString":1,"constructor":"x","hasOwnProperty":[],"valueOf":{"prototype":2}}' })));
    for (const node of sim.live()) {
      const row = node.core.table['zz-forged'];
      assert.ok(row);
      assert.equal(Object.getPrototypeOf(row.data), Object.prototype);
      assert.deepEqual(Object.keys(row.data).sort(), ['constructor', 'hasOwnProperty', 'toString', 'valueOf']);
      assert.equal(node.core.masterHostname, 'a');
    }
    assert.equal(prototypeState(), protos);
    assert.equal(typeof {}.toString, 'function');
    sim.runFor(TOCK + TICK);
    for (const node of sim.live()) assert.deepEqual(Object.keys(node.core.table).sort(), HOSTS, 'the forged row did not expire');
    assert.equal(sim.agreedMaster(), 'a');
  });

  test('unknown fields are ignored: a heartbeat cannot set self, locked or now on its row', () => {
    const sim = settled();
    sim.inject(json(heartbeatText({ self: '1', locked: 'true', now: '99999999999', servers: '{"a":{}}', masterHostname: '"zz-forged"' })));
    const row = sim.node('b').core.table['zz-forged'];
    assert.ok(row);
    assert.equal(row.self, false);
    assert.equal(row.locked, false);
    assert.ok(row.now < 99999999999);
    assert.equal(sim.node('b').core.masterHostname, 'a');
    sim.runFor(TOCK + TICK);
    assert.equal(sim.node('b').core.table['zz-forged'], undefined, 'a locked row would never expire');
  });

  test('a flood of 5,000 forged hostnames fills the table to max_servers and no further, then expires', () => {
    const sim = settled(undefined, 50);
    for (let i = 0; i < 5000; i++) sim.inject(json(heartbeatText({ hostname: `"flood-${i}"` })));
    for (const node of sim.live()) {
      assert.equal(node.core.size, 50);
      assert.equal(node.core.masterHostname, 'a');
    }
    assert.ok((sim.drops['table-full'] ?? 0) >= 3 * (5000 - 47));
    sim.runFor(TOCK + TICK);
    for (const node of sim.live()) assert.equal(node.core.size, 3);
    assert.equal(sim.agreedMaster(), 'a');
  });

  test("one forged heartbeat under the master's own hostname, sent to the master: no row, no yielding", () => {
    const sim = settled();
    assertDropped2(sim, json(heartbeatText({ hostname: '"a"', master: '1', uptime: '999999' })), ['a']);
    assertDropped2(sim, json(heartbeatText({ hostname: '"a"', master: '1', iid: '"00000000"', seq: '1' })), ['a']);
  });

  test('a forged shutdown of the live master without its instance id changes nothing', () => {
    const sim = settled();
    assertDropped2(sim, json('{"hostname":"a","action":"shutdown"}'));
    assertDropped2(sim, json('{"hostname":"a","action":"shutdown","iid":"00000000","seq":99999}'));
  });

  test('LIMITATION without a secret: a copied instance id makes a forged shutdown believed (threat model, docs/SECURITY.md)', () => {
    const sim = settled();
    const iid = sim.node('a').core.instanceId;
    sim.inject(json(`{"hostname":"a","action":"shutdown","iid":"${iid}","seq":${Number.MAX_SAFE_INTEGER}}`), { to: ['b', 'c'] });
    assert.equal(sim.node('b').core.table.a, undefined);
    // The real master speaks again within a tick and the cluster converges back on it.
    sim.runFor(TOCK);
    assert.equal(sim.agreedMaster(), 'a');
  });
});

/** Injected (into every server, or `to`): believed by none, and nothing observable changes. */
function assertDropped2(sim: SimCluster, datagram: Buffer, to?: string[]): void {
  const before = observable(sim);
  const events = sim.events.length;
  assert.doesNotThrow(() => sim.inject(datagram, to ? { to } : {}));
  assert.equal(observable(sim), before, 'state changed');
  sim.runFor(TOCK);
  assert.equal(sim.agreedMaster(), 'a');
  assert.deepEqual(
    sim.events.slice(events).map((e) => `${e.host}:${e.event.type}`),
    [],
  );
}

describe('hostile datagrams with a secret: no outsider changes anything', () => {
  for (const [name, datagram] of MALFORMED) {
    // Open-format bytes are refused before any parsing, whatever is wrong inside.
    const reason = datagram.length > 32768 ? 'oversized' : 'unauthenticated';
    test(`${name}: dropped as ${reason}`, () => {
      assertDropped(settled(SECRET), datagram, reason);
    });
  }

  const master: HeartbeatMessage = {
    action: 'heartbeat',
    hostname: '0-forged',
    ip: '10.6.6.6',
    master: true,
    eligible: true,
    uptime: 9,
    data: {},
    iid: '0000000000000001',
    seq: 1,
  };

  test('forged heartbeat claiming master, open format: unauthenticated', () => {
    assertDropped(settled(SECRET), encode(master), 'unauthenticated');
  });

  test('forged heartbeat claiming master, signed with a wrong key: unknown-key', () => {
    assertDropped(settled(SECRET), encode(master, createKeyring('a guessed secret')), 'unknown-key');
  });

  test('forged shutdown of the live master with its real instance id and a huge seq, open format: unauthenticated', () => {
    const sim = settled(SECRET);
    const shutdown: Message = { action: 'shutdown', hostname: 'a', iid: sim.node('a').core.instanceId, seq: Number.MAX_SAFE_INTEGER };
    assertDropped(sim, encode(shutdown), 'unauthenticated');
  });

  test('forged shutdown of the live master, signed with a wrong key: unknown-key', () => {
    const sim = settled(SECRET);
    const shutdown: Message = { action: 'shutdown', hostname: 'a', iid: sim.node('a').core.instanceId, seq: Number.MAX_SAFE_INTEGER };
    assertDropped(sim, encode(shutdown, createKeyring('a guessed secret')), 'unknown-key');
  });

  /** The latest authentic datagram of `action` the master sent, as an eavesdropper captured it. */
  function captured(sim: SimCluster, action: Message['action'], host = 'a'): Buffer {
    let last: Buffer | null = null;
    sim.onDatagram = (from, datagram) => {
      const result = decode(datagram, { keyring: KEYRING });
      if (from === host && result.ok && result.message.action === action) last = datagram;
    };
    sim.runFor(TICK + 1);
    sim.onDatagram = null;
    assert.ok(last, `no ${action} captured`);
    return last;
  }

  test('captured heartbeat of the master with master:1 edited to a shutdown body, MAC kept: bad-mac', () => {
    const sim = settled(SECRET);
    const datagram = Buffer.from(captured(sim, 'heartbeat'));
    const text = datagram.toString('latin1').replace('"action":"heartbeat"', '"action":"shutdown"');
    assertDropped(sim, Buffer.from(text, 'latin1'), 'bad-mac');
  });

  test('captured heartbeat with one MAC byte changed: bad-mac', () => {
    const sim = settled(SECRET);
    const datagram = Buffer.from(captured(sim, 'heartbeat'));
    datagram[20] = (datagram[20] as number) ^ 0x01;
    assertDropped(sim, datagram, 'bad-mac');
  });

  test('captured heartbeat truncated into its MAC: unauthenticated', () => {
    const sim = settled(SECRET);
    assertDropped(sim, captured(sim, 'heartbeat').subarray(0, 30), 'unauthenticated');
  });

  test('captured header spliced onto another body: bad-mac', () => {
    const sim = settled(SECRET);
    const datagram = captured(sim, 'heartbeat');
    const body = encode({ ...master, hostname: 'a' });
    assertDropped(sim, Buffer.concat([datagram.subarray(0, 40), body]), 'bad-mac');
  });

  test("replay of the master's latest heartbeat: stale on every other server, nothing changes", () => {
    const sim = settled(SECRET);
    const datagram = captured(sim, 'heartbeat');
    const before = observable(sim);
    const stale = sim.drops.stale ?? 0;
    sim.inject(datagram, { to: ['b', 'c'] });
    assert.equal((sim.drops.stale ?? 0) - stale, 2);
    assert.equal(observable(sim), before);
  });

  test('forged promote request to the master and forged app message, open format: unauthenticated', () => {
    const sim = settled(SECRET);
    const iid = sim.node('b').core.instanceId;
    assertDropped(sim, encode({ action: 'promote', hostname: 'b', target: 'a', iid, seq: 10 ** 9 }), 'unauthenticated');
    assertDropped(
      sim,
      encode({ action: 'message', hostname: 'b', to: '*', type: 'job', payload: { run: 'rm -rf' }, iid, seq: 10 ** 9 }),
      'unauthenticated',
    );
  });

  test('replay of a captured app message: stale, never delivered twice', () => {
    const sim = settled(SECRET);
    let sent: Buffer | null = null;
    sim.onDatagram = (from, datagram) => {
      const result = decode(datagram, { keyring: KEYRING });
      if (from === 'b' && result.ok && result.message.action === 'message') sent = datagram;
    };
    sim.sendMessage('b', '*', 'job', { id: 42 });
    sim.runFor(10);
    sim.onDatagram = null;
    assert.ok(sent);
    assert.equal(sim.eventsOf('message').length, 2, 'a and c each got it once');
    const stale = sim.drops.stale ?? 0;
    sim.inject(sent, { to: ['a', 'c'] });
    sim.runFor(TICK);
    assert.equal(sim.eventsOf('message').length, 2, 'a replay was delivered again');
    assert.equal((sim.drops.stale ?? 0) - stale, 2);
  });

  test('old key after a rotation: unknown-key', () => {
    const sim = settled(SECRET);
    const oldKey = 'the key before the rotation, long enough';
    const beforeRotation: HeartbeatMessage = { ...master, hostname: 'a', iid: sim.node('a').core.instanceId, seq: 10 ** 9 };
    assertDropped(sim, encode(beforeRotation, createKeyring(oldKey)), 'unknown-key');
  });
});
