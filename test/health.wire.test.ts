/**
 * Every server's health check travels in its heartbeats (field `health`, SPEC §5 and §9.8):
 * the codec at the field's limits and against hostile values, the bytes of a server without a
 * check unchanged, a peer's record showing its check as it changes (deterministic, on the
 * simulator), the heartbeat that makes a server ineligible carrying the failing state that
 * caused it, and what the status CLI, etcd-status and the status document make of it. The
 * real sockets: test/exclusive.process.test.ts (the other servers see a failing check).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../src/wire/codec';
import { healthWord, type HealthStatus } from '../src/app/health';
import { MasterWork } from '../src/app/master-work';
import { ElectionCore } from '../src/core/election';
import { healthOf, healthWordOf, type Instant, type Output, type ServerRecord } from '../src/elector/types';
import { MAX_HEALTH_COUNT, MAX_HEALTH_ERROR_CHARS } from '../src/protocol/limits';
import type { HealthWord, HeartbeatMessage } from '../src/protocol/messages';
import { renderTable } from '../src/cli';
import { statusBody } from '../src/shell/status';
import { healthText } from '../src/shell/view';
import { describeStore, renderStore } from '../src/shell/etcd-status';
import { SimCluster } from '../sim/cluster';
import { LeaseSimCluster } from '../sim/lease-cluster';
import { Random } from '../sim/random';
import { ManualTimers } from './helpers/timers';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

function heartbeat(fields: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return { action: 'heartbeat', hostname: 'h', ip: '', master: false, eligible: true, uptime: 0, data: {}, ...fields };
}

function raw(health: unknown): Buffer {
  return bytes(`${JSON.stringify({ hostname: 'h', ip: '', master: 0, eligible: 1, uptime: 0, data: {}, action: 'heartbeat', health })}\n`);
}

function expectBadHealth(health: unknown): void {
  const result = decode(raw(health));
  assert.deepEqual(
    result.ok ? 'accepted' : [result.reason, result.detail],
    ['bad-field', 'health'],
    `health ${JSON.stringify(health)} was not dropped as bad-field`,
  );
}

function status(fields: Partial<HealthStatus>): HealthStatus {
  return {
    state: 'passing',
    healthy: true,
    interval: 2,
    rise: 2,
    fall: 3,
    timeout: 2,
    passes: 0,
    failures: 0,
    checks: 1,
    last: { ok: true, error: '', at: 0, ms: 1 },
    since: 0,
    ...fields,
  };
}

describe('health on the wire: the codec', () => {
  test('without a health check the heartbeat is byte for byte what it was; with one, the field comes last but echo', () => {
    const plain = heartbeat({ iid: 'abcdef0123456789', seq: 7, term: 9, tick: 1000, beats: 3, pid: 42 });
    const before =
      '{"hostname":"h","ip":"","master":0,"eligible":1,"uptime":0,"data":{},"action":"heartbeat","iid":"abcdef0123456789","seq":7,"term":9,"tick":1000,"beats":3,"pid":42}\n';
    assert.equal(encode(plain).toString(), before);
    const failing = encode({ ...plain, health: { s: 'failing', f: 3, rise: 2, fall: 3, e: 'disk full' } }).toString();
    assert.equal(failing, `${before.slice(0, -2)},"health":{"s":"failing","f":3,"rise":2,"fall":3,"e":"disk full"}}\n`);
    // What the original does with it: JSON.parse, switch on action, read its own fields.
    const parsed = JSON.parse(failing) as Record<string, unknown>;
    assert.equal(parsed.action, 'heartbeat');
    assert.equal(parsed.eligible, 1);
  });

  test('a server with no check sends no health field; setting one adds it, removing it takes it away again', () => {
    const core = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'abcdef0123456789', tickMs: 1000, checkBeats: 3 });
    const now = (mono: number): Instant => ({ mono, wall: 1e12 + mono });
    const sent = (output: Output): string[] =>
      output.send.filter((o) => o.message.action === 'heartbeat').map((o) => encode(o.message).toString());
    let wire = sent(core.start(now(0)));
    assert.ok(wire.length > 0 && wire.every((text) => !text.includes('health')), wire.join(''));
    core.setHealth({ s: 'failing', f: 1, rise: 2, fall: 3, e: 'no answer within 2 s' });
    wire = sent(core.tick(now(1000)));
    assert.ok(
      wire.length > 0 && wire.every((text) => text.includes('"health":{"s":"failing","f":1,"rise":2,"fall":3,"e":"no answer within 2 s"}')),
    );
    core.setHealth(null);
    wire = sent(core.tick(now(2000)));
    assert.ok(wire.length > 0 && wire.every((text) => !text.includes('health')), wire.join(''));
  });

  test('round trip at the limits: each state, counts from 0 (left out) to MAX_HEALTH_COUNT, rise and fall 1 to 1000, a reason to its length', () => {
    const words: HealthWord[] = [
      { s: 'starting', rise: 1, fall: 1 },
      { s: 'passing', p: MAX_HEALTH_COUNT, rise: 1000, fall: 1000 },
      { s: 'passing', f: 2, rise: 2, fall: 3, e: 'x' },
      { s: 'failing', f: MAX_HEALTH_COUNT, rise: 2, fall: 3, e: 'é'.repeat(MAX_HEALTH_ERROR_CHARS) },
      { s: 'failing', p: 1, rise: 2, fall: 3, e: '💾 full, ünïcödé ok' },
    ];
    for (const health of words) {
      const message = heartbeat({ health });
      assert.deepEqual(decode(encode(message)), { ok: true, message }, JSON.stringify(health));
    }
    // Zero counts are the absent ones: sent as 0 by another implementation, they decode as absent.
    const zero = decode(raw({ s: 'passing', f: 0, p: 0, rise: 2, fall: 3 }));
    assert.ok(zero.ok && zero.message.action === 'heartbeat');
    if (zero.ok && zero.message.action === 'heartbeat') assert.deepEqual(zero.message.health, { s: 'passing', rise: 2, fall: 3 });
  });

  test('every value outside the limits drops the heartbeat as bad-field (health), and nothing else', () => {
    const good = { s: 'failing', f: 3, rise: 2, fall: 3, e: 'disk full' };
    const bad: unknown[] = [
      null,
      'failing',
      3,
      true,
      [],
      [good],
      ...['rising', 'FAILING', '', 'constructor', '__proto__', 1, null, undefined, ['failing']].map((s) => ({ ...good, s })),
      ...[-1, 0.5, MAX_HEALTH_COUNT + 1, 2 ** 53, Infinity, '3', null, true].map((f) => ({ ...good, f })),
      ...[-1, 1.5, MAX_HEALTH_COUNT + 1, '1', null].map((p) => ({ ...good, p })),
      ...[0, -1, 1001, 1.5, '2', null, undefined].map((rise) => ({ ...good, rise })),
      ...[0, 1001, 2.5, '3', null, undefined].map((fall) => ({ ...good, fall })),
      ...[
        '',
        'x'.repeat(MAX_HEALTH_ERROR_CHARS + 1),
        'two\nlines',
        'tab\there',
        'a\u0000b',
        'clear \u001b[2J screen',
        'c1 \u009b31m',
        'del \u007f',
        'bidi \u202e reversed',
        'isolate \u2066x\u2069',
        5,
        null,
        ['disk full'],
        { message: 'disk full' },
      ].map((e) => ({ ...good, e })),
    ];
    for (const health of bad) expectBadHealth(health);
    // The bad field alone is what is refused: the same heartbeat with a good one decodes.
    assert.equal(decode(raw(good)).ok, true);
  });

  test('unknown keys inside are ignored and not copied; __proto__ inside is refused like anywhere else', () => {
    const extra = decode(raw({ s: 'passing', rise: 2, fall: 3, x: 1, toString: 'y', constructor: 'z' }));
    assert.ok(extra.ok && extra.message.action === 'heartbeat');
    if (extra.ok && extra.message.action === 'heartbeat') {
      assert.deepEqual(Object.keys(extra.message.health ?? {}), ['s', 'rise', 'fall']);
    }
    const polluting = bytes(
      '{"hostname":"h","ip":"","master":0,"eligible":1,"uptime":0,"data":{},"action":"heartbeat","health":{"s":"passing","rise":2,"fall":3,"__proto__":{"polluted":1}}}',
    );
    const result = decode(polluting);
    assert.deepEqual(result.ok ? 'accepted' : result.reason, 'special-key');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('what a server sends always decodes: any status, any failure message, any count (the class, 2000 random cases)', () => {
    const random = new Random(24);
    const pieces = ['disk full', '\n', '\t', '\u001b[31m', '\u009b', '\u202e', '\u2066', 'é', '💾', ' ', 'x'.repeat(50), '\r\n', '\u0000'];
    for (let i = 0; i < 2000; i++) {
      const length = random.int(0, 30);
      let error = '';
      for (let k = 0; k < length; k++) error += random.pick(pieces);
      const failed = random.chance(0.6);
      const word = healthWord(
        status({
          state: random.pick(['starting', 'passing', 'failing'] as const),
          rise: random.int(1, 1000),
          fall: random.int(1, 1000),
          failures: random.pick([0, 1, random.int(0, 1e9), MAX_HEALTH_COUNT, MAX_HEALTH_COUNT + 1, Number.MAX_SAFE_INTEGER]),
          passes: random.pick([0, 1, random.int(0, 1e9), MAX_HEALTH_COUNT + 1]),
          last: { ok: !failed, error: failed ? error : '', at: 0, ms: 1 },
        }),
      );
      const result = decode(encode(heartbeat({ health: word })));
      assert.ok(result.ok, `refused: ${JSON.stringify(word)}: ${result.ok ? '' : result.detail}`);
      if (result.ok && result.message.action === 'heartbeat') assert.deepEqual(result.message.health, word);
      if (word.e !== undefined) assert.ok(word.e.length <= MAX_HEALTH_ERROR_CHARS && !/[\u0000-\u001f]/.test(word.e));
    }
  });

  test('the reason is cut to the wire length without splitting a character, and kept only while the last check failed', () => {
    const long = healthWord(status({ state: 'failing', failures: 3, last: { ok: false, error: '💾'.repeat(200), at: 0, ms: 1 } }));
    assert.ok(long.e !== undefined && long.e.length <= MAX_HEALTH_ERROR_CHARS && long.e.endsWith('…'));
    assert.ok(!/[\ud800-\udbff]…$/.test(long.e ?? ''), 'a lone high surrogate before the ellipsis');
    const passed = healthWord(status({ state: 'failing', passes: 1, last: { ok: true, error: '', at: 0, ms: 1 } }));
    assert.equal(passed.e, undefined);
    assert.deepEqual(healthOf(passed), { state: 'failing', failures: 0, passes: 1, rise: 2, fall: 3, error: '' });
    assert.deepEqual(healthWordOf(healthOf(passed)), passed);
  });
});

describe("health on the wire: a peer's record (simulator, deterministic)", () => {
  test("b's failing check shows in a's servers record with its count and reason; it clears when b passes, and goes with the check", () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    sim.add('a');
    sim.add('b');
    sim.runUntilTrue(() => sim.agreedMaster() !== null, 15_000);
    const seen = (): ServerRecord['health'] | undefined => sim.node('a').core.record('b')?.health;
    assert.equal(seen(), null, 'no check: no health');
    sim.node('b').core.setHealth({ s: 'failing', f: 3, rise: 2, fall: 3, e: 'connect ECONNREFUSED 127.0.0.1:5432' });
    sim.setEligible('b', false);
    // The heartbeat that says "not eligible" carries the reason: no tick between them.
    assert.notEqual(
      sim.runUntilTrue(() => sim.node('a').core.record('b')?.eligible === false, 100),
      null,
    );
    assert.deepEqual(seen(), {
      state: 'failing',
      failures: 3,
      passes: 0,
      rise: 2,
      fall: 3,
      error: 'connect ECONNREFUSED 127.0.0.1:5432',
    });
    sim.node('b').core.setHealth({ s: 'failing', p: 1, rise: 2, fall: 3 });
    assert.notEqual(
      sim.runUntilTrue(() => seen()?.passes === 1, 1500),
      null,
      'a count that changed rides on the next regular heartbeat',
    );
    assert.equal(seen()?.error, '');
    sim.node('b').core.setHealth({ s: 'passing', p: 2, rise: 2, fall: 3 });
    sim.setEligible('b', true);
    assert.notEqual(
      sim.runUntilTrue(() => seen()?.state === 'passing' && sim.node('a').core.record('b')?.eligible === true, 100),
      null,
    );
    sim.node('b').core.setHealth(null);
    assert.notEqual(
      sim.runUntilTrue(() => seen() === null, 1500),
      null,
    );
    assert.equal(sim.agreedMaster() !== null, true);
  });

  test("the application's copy of a record cannot change what the election holds or sends", () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    sim.add('a');
    sim.add('b');
    sim.node('b').core.setHealth({ s: 'failing', f: 3, rise: 2, fall: 3, e: 'disk full' });
    sim.runUntilTrue(() => sim.node('a').core.record('b')?.health?.state === 'failing', 5000);
    const table = sim.node('b').driver.servers;
    const own = table.b?.health;
    assert.ok(own);
    own.state = 'passing';
    own.error = 'a\u001b[2J';
    sim.runFor(3000);
    assert.deepEqual(sim.node('a').core.record('b')?.health, {
      state: 'failing',
      failures: 3,
      passes: 0,
      rise: 2,
      fall: 3,
      error: 'disk full',
    });
    assert.equal(sim.node('b').driver.servers.b?.health?.state, 'failing');
  });
});

describe('health in the etcd mode (simulated store)', () => {
  test("a member's record carries its check's state, rise and fall; counts alone changing write nothing to the store", () => {
    const sim = new LeaseSimCluster({ seed: 7, tickMs: 200, checkBeats: 3, ttlSeconds: 1, minDelayMs: 1, maxDelayMs: 5 });
    sim.add('a');
    sim.add('b');
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() !== null, 10_000),
      null,
    );
    const seen = (): ServerRecord['health'] | undefined => sim.node('a').machine.record('b')?.health;
    assert.equal(seen(), null);
    const key = `${sim.node('b').machine.keys.members}b`;
    sim.node('b').machine.setHealth({ s: 'failing', f: 3, rise: 2, fall: 3, e: 'disk full' });
    sim.setEligible('b', false);
    assert.notEqual(
      sim.runUntilTrue(() => seen()?.state === 'failing', 2000),
      null,
    );
    // Its own record shows all of it; the store, and so the others, the state only.
    assert.deepEqual(sim.node('b').machine.record('b')?.health, {
      state: 'failing',
      failures: 3,
      passes: 0,
      rise: 2,
      fall: 3,
      error: 'disk full',
    });
    assert.deepEqual(seen(), { state: 'failing', failures: 0, passes: 0, rise: 2, fall: 3, error: '' });
    const written = sim.store.kv.get(key)?.modRevision;
    for (let f = 4; f < 20; f++) {
      sim.node('b').machine.setHealth({ s: 'failing', f, rise: 2, fall: 3, e: `disk full (${f})` });
      sim.runFor(200);
    }
    assert.equal(sim.store.kv.get(key)?.modRevision, written, "b's record was rewritten for a count");
    sim.node('b').machine.setHealth({ s: 'passing', p: 2, rise: 2, fall: 3 });
    sim.setEligible('b', true);
    assert.notEqual(
      sim.runUntilTrue(() => seen()?.state === 'passing', 2000),
      null,
    );
    sim.node('b').machine.setHealth(null);
    assert.notEqual(
      sim.runUntilTrue(() => seen() === null, 2000),
      null,
    );
  });
});

describe('health on the wire: the heartbeat that makes a server ineligible says why', () => {
  test('a check that starts failing: the eligibility heartbeat carries `failing` and its reason (MasterWork wired as the component wires it)', async () => {
    const timers = new ManualTimers();
    const core = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'abcdef0123456789', tickMs: 1000, checkBeats: 3 });
    let mono = 0;
    const now = (): Instant => ({ mono, wall: 1e12 + mono });
    const heartbeats: HeartbeatMessage[] = [];
    const collect = (output: Output): void => {
      for (const out of output.send) if (out.message.action === 'heartbeat') heartbeats.push(out.message);
    };
    collect(core.start(now()));
    const work = new MasterWork(
      {
        isMaster: () => core.master,
        term: () => core.term,
        drainTimeoutMs: () => 5000,
        appEligible: () => true,
        applyEligible: (eligible) => collect(core.setEligible(eligible, now())),
        applyHealth: (health) => core.setHealth(health),
        log: () => undefined,
      },
      { work: timers, health: timers },
    );
    let healthy = true;
    work.setHealthCheck(() => (healthy ? true : Promise.reject(new Error('disk full'))), { interval: 1, rise: 2, fall: 2 });
    await timers.advance(0);
    mono = 1000;
    collect(core.tick(now()));
    assert.deepEqual(heartbeats.at(-1)?.health, { s: 'passing', p: 1, rise: 2, fall: 2 });
    healthy = false;
    const before = heartbeats.length;
    await timers.advance(2000);
    const announced = heartbeats.slice(before).find((hb) => !hb.eligible);
    assert.ok(announced, 'a heartbeat announced the server ineligible');
    assert.deepEqual(announced.health, { s: 'failing', f: 2, rise: 2, fall: 2, e: 'disk full' });
    work.setHealthCheck(null);
    assert.equal(core.record('a')?.health, null, 'no check, no health');
  });
});

describe('health on the wire: what operators read', () => {
  const passing = { state: 'passing' as const, failures: 0, passes: 9, rise: 2, fall: 3, error: '' };
  test('healthText: failing n/fall, on its way back, on its way down, starting, none, and state only (etcd peers)', () => {
    assert.equal(healthText(null), '');
    assert.equal(healthText({ ...passing, state: 'starting', passes: 0 }), 'starting');
    assert.equal(healthText(passing), 'passing');
    assert.equal(healthText({ ...passing, passes: 0, failures: 1 }), 'passing (1/3 failed)');
    assert.equal(healthText({ ...passing, state: 'failing', passes: 0, failures: 3 }), 'failing 3/3');
    assert.equal(healthText({ ...passing, state: 'failing', passes: 1, failures: 0 }), 'failing, 1/2 passed');
    assert.equal(healthText({ ...passing, state: 'failing', passes: 0, failures: 0 }), 'failing');
  });

  function record(hostname: string, fields: Partial<ServerRecord>): ServerRecord {
    return {
      hostname,
      ip: '127.0.0.1',
      master: false,
      eligible: true,
      self: false,
      now: 1000,
      data: {},
      uptime: 5,
      locked: false,
      priority: 0,
      term: 1,
      health: null,
      ...fields,
    };
  }

  test('the status document carries each server its health; the CLI table shows it and says why a failing one fails', () => {
    const servers: Record<string, ServerRecord> = {
      alpha: record('alpha', { master: true, self: true }),
      bravo: record('bravo', {
        eligible: false,
        health: { state: 'failing', failures: 4, passes: 0, rise: 2, fall: 3, error: 'connect ECONNREFUSED \u202e' },
      }),
      charlie: record('charlie', { eligible: false }),
      delta: record('delta', { health: passing }),
    };
    const doc = statusBody(
      {
        hostname: 'alpha',
        master: true,
        masterHostname: 'alpha',
        term: 1,
        eligible: true,
        members: ['alpha', 'delta'],
        servers,
        stats: {},
        settings: { heartbeat_freq: 1, check_beats: 3, cluster_id: '' },
      },
      { departures: null, failovers: null },
      1_000_500,
    );
    const byHost = Object.fromEntries(doc.view.map((row) => [row.hostname, row.health]));
    assert.deepEqual(byHost, { alpha: null, bravo: servers.bravo?.health, charlie: null, delta: passing });
    assert.notEqual(byHost.bravo, servers.bravo?.health, 'a copy, not the record itself');
    const text = renderTable({ ...doc, observer: null });
    const lines = text.split('\n');
    assert.ok(
      lines.some((line) => /│ eligible │ health +│ term/.test(line)),
      text,
    );
    const row = (host: string): string => lines.find((line) => line.startsWith(`│ ${host} `)) ?? '';
    assert.match(row('bravo'), /│ no +│ failing 4\/3 +│ 1 /);
    assert.match(row('charlie'), /│ no +│ +│ 1 /, 'ineligible by config: no health shown');
    assert.match(row('delta'), /│ yes +│ passing +│ 1 /);
    // The reason, on a line of its own, with the bidirectional override escaped for the terminal.
    assert.ok(lines.includes('bravo: not eligible: its health check fails: connect ECONNREFUSED \\u202e'), text);
    assert.ok(!text.includes('\u202e'));
  });

  test('etcd-status shows the state a member stores (no counts: the store keeps the state only)', () => {
    const member = (
      hostname: string,
      health: string,
    ): { key: string; value: string; createRevision: number; modRevision: number; lease: string } => ({
      key: `/p/members/${hostname}`,
      value: `{"hostname":"${hostname}","ip":"127.0.0.1","master":0,"eligible":${health === '' ? 1 : 0},"uptime":1,"data":{},"action":"heartbeat","iid":"abcdef0123456789"${health}}`,
      createRevision: 2,
      modRevision: 2,
      lease: '7',
    });
    const snapshot = describeStore('/p/', [member('alpha', ''), member('bravo', ',"health":{"s":"failing","rise":2,"fall":3}')], 9);
    assert.deepEqual(
      snapshot.members.map((m) => [m.hostname, m.health?.state ?? null]),
      [
        ['alpha', null],
        ['bravo', 'failing'],
      ],
    );
    const text = renderStore(snapshot);
    assert.match(text, /│ eligible │ health +│ priority/);
    assert.match(text.split('\n').find((line) => line.startsWith('│ bravo')) ?? '', /│ no +│ failing +│ 0 /);
  });
});
