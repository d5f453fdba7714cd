/**
 * The wire codec: the original's exact packets both ways, and every kind of malformed
 * datagram dropped with a reason, never a throw.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../src/wire/codec';
import { MAX_DATA_DEPTH } from '../src/protocol/limits';
import type { HeartbeatMessage } from '../src/protocol/messages';

/** Byte for byte what the original's tick() and shutdown() put on the wire. */
const ORIGINAL_HEARTBEAT =
  '{"hostname":"joeretina.local","ip":"10.1.10.24","master":1,"eligible":1,"uptime":3612,"data":{"foo":"bar"},"action":"heartbeat"}\n';
const ORIGINAL_SHUTDOWN = '{"hostname":"joeretina.local","action":"shutdown"}\n';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

function heartbeat(overrides: Record<string, unknown> = {}): Buffer {
  return bytes(
    JSON.stringify({ hostname: 'host1', ip: '10.0.0.1', master: 0, eligible: 1, uptime: 5, data: {}, action: 'heartbeat', ...overrides }) +
      '\n',
  );
}

function expectDrop(datagram: Buffer, reason: string, detail?: string): void {
  const result = decode(datagram);
  assert.equal(result.ok, false, `accepted: ${datagram.toString().slice(0, 80)}`);
  if (!result.ok) {
    assert.equal(result.reason, reason);
    if (detail !== undefined) assert.equal(result.detail, detail);
  }
}

describe('golden packets of the original', () => {
  test('an original heartbeat decodes to the typed message', () => {
    const result = decode(bytes(ORIGINAL_HEARTBEAT));
    assert.deepEqual(result, {
      ok: true,
      message: {
        action: 'heartbeat',
        hostname: 'joeretina.local',
        ip: '10.1.10.24',
        master: true,
        eligible: true,
        uptime: 3612,
        data: { foo: 'bar' },
      },
    });
  });

  test('an original shutdown notice decodes', () => {
    assert.deepEqual(decode(bytes(ORIGINAL_SHUTDOWN)), { ok: true, message: { action: 'shutdown', hostname: 'joeretina.local' } });
  });

  test('without the new fields we encode exactly the original bytes', () => {
    const message: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: 'joeretina.local',
      ip: '10.1.10.24',
      master: true,
      eligible: true,
      uptime: 3612,
      data: { foo: 'bar' },
    };
    assert.equal(encode(message).toString('utf8'), ORIGINAL_HEARTBEAT);
    assert.equal(encode({ action: 'shutdown', hostname: 'joeretina.local' }).toString('utf8'), ORIGINAL_SHUTDOWN);
  });

  test('new fields go after the original ones, where the original ignores them', () => {
    const text = encode({
      action: 'heartbeat',
      hostname: 'h',
      ip: '',
      master: false,
      eligible: true,
      uptime: 0,
      data: {},
      iid: 'abcdef0123456789',
      seq: 7,
    }).toString();
    assert.equal(
      text,
      '{"hostname":"h","ip":"","master":0,"eligible":1,"uptime":0,"data":{},"action":"heartbeat","iid":"abcdef0123456789","seq":7}\n',
    );
    const parsed = JSON.parse(text) as Record<string, unknown>;
    // What the original does with a packet: JSON.parse, switch on action, read these fields.
    assert.equal(parsed.action, 'heartbeat');
    assert.equal(parsed.hostname, 'h');
  });

  test('hello is an action the original ignores (its switch has no case for it)', () => {
    const text = encode({ action: 'hello', hostname: 'h', iid: '0123456789abcdef', seq: 1 }).toString();
    assert.equal(JSON.parse(text).action, 'hello');
  });

  test('booleans are accepted where the original sends 0/1, and the trailing newline is optional', () => {
    const result = decode(bytes(ORIGINAL_HEARTBEAT.trim().replace('"master":1', '"master":true')));
    assert.ok(result.ok && result.message.action === 'heartbeat' && result.message.master === true);
  });

  test('unknown fields are ignored, not copied', () => {
    const result = decode(heartbeat({ evil: { deep: 1 }, now: 5, self: 1, locked: true }));
    assert.ok(result.ok);
    assert.deepEqual(Object.keys(result.message).sort(), ['action', 'data', 'eligible', 'hostname', 'ip', 'master', 'uptime']);
  });

  test('null or missing data becomes an empty object', () => {
    for (const data of [null, undefined]) {
      const result = decode(heartbeat({ data }));
      assert.ok(result.ok && result.message.action === 'heartbeat');
      assert.deepEqual((result.message as HeartbeatMessage).data, {});
    }
  });
});

describe('malformed datagrams are dropped with a reason', () => {
  test('empty, binary garbage and text that is not JSON', () => {
    expectDrop(Buffer.alloc(0), 'not-json');
    expectDrop(Buffer.from([0xff, 0x00, 0x7b, 0x13]), 'not-json');
    expectDrop(bytes('hello world'), 'not-json');
    expectDrop(bytes('{not json'), 'not-json');
    expectDrop(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'not-json');
  });

  test('every truncation of a valid heartbeat', () => {
    const full = bytes(ORIGINAL_HEARTBEAT.trim());
    for (let length = 1; length < full.length; length++) {
      const result = decode(full.subarray(0, length));
      assert.equal(result.ok, false, `truncated to ${length} bytes was accepted`);
    }
  });

  test('JSON that is not an object at the top', () => {
    expectDrop(bytes('[1,2,3]'), 'not-json'); // does not start with "{", like the original
    expectDrop(bytes('"{"'), 'not-json');
  });

  test('oversized datagrams, before parsing', () => {
    const big = heartbeat({ data: { blob: 'x'.repeat(40_000) } });
    expectDrop(big, 'oversized');
    const result = decode(big, { maxBytes: 50_000 });
    assert.ok(result.ok, 'a larger limit accepts it');
  });

  test('deep nesting in data', () => {
    let nested = '1';
    for (let i = 0; i < MAX_DATA_DEPTH + 5; i++) nested = `{"a":${nested}}`;
    expectDrop(bytes(`{"hostname":"h","ip":"","master":0,"eligible":1,"uptime":0,"action":"heartbeat","data":${nested}}`), 'too-deep');
    const arrays = '['.repeat(10_000) + ']'.repeat(10_000);
    const result = decode(bytes(`{"hostname":"h","action":"heartbeat","data":{"x":${arrays}}}`), { maxBytes: 30_000 });
    assert.equal(result.ok, false);
  });

  test('__proto__ anywhere is refused; constructor and prototype are plain data', () => {
    expectDrop(bytes('{"__proto__":{"polluted":1},"hostname":"h","action":"heartbeat"}'), 'special-key');
    expectDrop(heartbeat({ data: JSON.parse('{"x":{"__proto__":{"polluted":1}}}') }), 'special-key');
    expectDrop(bytes(ORIGINAL_HEARTBEAT.replace('"foo":"bar"', '"__proto__":{"isAdmin":true}')), 'special-key');
    const result = decode(heartbeat({ data: { constructor: 'x', prototype: { y: 1 } } }));
    assert.ok(result.ok);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
  });

  test('missing or non-string action, and unknown actions', () => {
    expectDrop(heartbeat({ action: undefined }), 'bad-field', 'action');
    expectDrop(heartbeat({ action: 5 }), 'bad-field', 'action');
    expectDrop(heartbeat({ action: { toString: 'heartbeat' } }), 'bad-field', 'action');
    expectDrop(heartbeat({ action: 'reboot' }), 'unknown-action');
    expectDrop(heartbeat({ action: 'constructor' }), 'unknown-action');
  });

  test('hostnames: wrong type, empty, too long, special names, control and odd characters', () => {
    const bad: unknown[] = [
      undefined,
      null,
      5,
      true,
      ['a'],
      { a: 1 },
      '',
      ' ',
      'a b',
      'host\n',
      'host\u0000',
      '-leading',
      '.dot',
      '__proto__',
      'constructor',
      'x'.repeat(254),
      'héllo',
      'a/b',
      'a:b',
      '<script>',
    ];
    for (const hostname of bad) expectDrop(heartbeat({ hostname }), 'bad-field', 'hostname');
    for (const hostname of ['a', 'web-01', 'db_2.example.com', 'A1', 'x'.repeat(253)]) {
      assert.ok(decode(heartbeat({ hostname })).ok, hostname);
    }
  });

  test('ip must be an address (or empty, as the original may send)', () => {
    for (const ip of [5, null, {}, 'not-an-ip', '10.0.0.256', '1.2.3.4; rm -rf /', 'x'.repeat(100)]) {
      expectDrop(heartbeat({ ip }), 'bad-field', 'ip');
    }
    for (const ip of ['', '10.0.0.1', '::1', 'fe80::1']) assert.ok(decode(heartbeat({ ip })).ok, String(ip));
  });

  test('master and eligible must be 0, 1, true or false', () => {
    for (const field of ['master', 'eligible']) {
      for (const value of [2, -1, '1', 'true', null, [], {}, 0.5, undefined]) {
        expectDrop(heartbeat({ [field]: value }), 'bad-field', field);
      }
    }
  });

  test('uptime must be a finite non-negative number', () => {
    for (const uptime of [-1, '5', null, {}, [], undefined, 1e400]) expectDrop(heartbeat({ uptime }), 'bad-field', 'uptime');
  });

  test('data must be an object, not a string, number or array', () => {
    for (const data of ['x', 5, true, [1, 2]]) expectDrop(heartbeat({ data }), 'bad-field', 'data');
  });

  test('iid and seq, when present, must be well formed', () => {
    for (const iid of [5, '', 'XYZ', 'short', 'g'.repeat(16), 'a'.repeat(65)]) expectDrop(heartbeat({ iid }), 'bad-field', 'iid');
    for (const seq of [-1, 1.5, '3', null, 2 ** 60]) expectDrop(heartbeat({ seq }), 'bad-field', 'seq');
  });

  test('pid: the added field round-trips from 1 to 2^32 - 1; anything else drops the heartbeat as bad-field', () => {
    for (const pid of [1, 4242, 2 ** 22, 2 ** 32 - 1]) {
      const text = encode({
        action: 'heartbeat',
        hostname: 'h',
        ip: '',
        master: false,
        eligible: true,
        uptime: 0,
        data: {},
        iid: 'abcdef0123456789',
        seq: 7,
        pid,
      }).toString();
      assert.ok(text.endsWith(`,"pid":${pid}}\n`), text);
      const result = decode(bytes(text));
      assert.ok(result.ok && result.message.action === 'heartbeat' && result.message.pid === pid, String(pid));
    }
    for (const pid of [0, -1, 1.5, 2 ** 32, 1e300, '4242', null, true, [1], { n: 1 }]) expectDrop(heartbeat({ pid }), 'bad-field', 'pid');
  });

  test('pace and lead: round trip at their limits, and dropped outside them; unknown keys of lead are not kept', () => {
    const leads = [
      { h: 'alpha', age: 0, t: 0 },
      { h: 'a'.repeat(253), age: 86_400_000, t: Number.MAX_SAFE_INTEGER, p: -1_000_000 },
      { h: 'b', age: 5, t: 7, p: 1_000_000 },
      { h: 'c', age: 5, t: 7, n: 1 },
      { h: 'c', age: 5, t: 7, p: 2, n: 15 },
    ];
    for (const fields of [{ pace: 10 }, { pace: 86_400_000 }, ...leads.map((lead) => ({ lead }))]) {
      const message: HeartbeatMessage = {
        action: 'heartbeat',
        hostname: 'h',
        ip: '',
        master: false,
        eligible: true,
        uptime: 0,
        data: {},
        ...fields,
      };
      assert.deepEqual(decode(encode(message)), { ok: true, message });
    }
    for (const pace of [9, 86_400_001, 1.5, '100', null, -1]) expectDrop(heartbeat({ pace }), 'bad-field', 'pace');
    const good = { h: 'alpha', age: 1, t: 1 };
    const bad = [
      'alpha',
      5,
      null,
      [],
      [good],
      ...['__proto__', 'constructor', '', '-x', 5, null, 'a'.repeat(254)].map((h) => ({ ...good, h })),
      ...[-1, 86_400_001, 0.5, '1', null, undefined].map((age) => ({ ...good, age })),
      ...[-1, 2 ** 53, 1.5, '1', null, undefined].map((t) => ({ ...good, t })),
      ...[1_000_001, Infinity, '1', null].map((p) => ({ ...good, p })),
      ...[-1, 16, 0.5, '1', null].map((n) => ({ ...good, n })),
    ];
    for (const lead of bad) expectDrop(heartbeat({ lead }), 'bad-field', 'lead');
    const extra = decode(heartbeat({ lead: { ...good, __proto__: { polluted: true }, x: 1 } }));
    assert.ok(extra.ok && extra.message.action === 'heartbeat');
    if (extra.ok && extra.message.action === 'heartbeat') assert.deepEqual(extra.message.lead, good);
  });

  test('health (a server that runs a health check): its golden bytes, after the original fields; the limits: test/health.wire.test.ts', () => {
    const message: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: 'h',
      ip: '',
      master: false,
      eligible: false,
      uptime: 0,
      data: {},
      health: { s: 'failing', f: 3, rise: 2, fall: 3, e: 'disk full' },
    };
    const golden =
      '{"hostname":"h","ip":"","master":0,"eligible":0,"uptime":0,"data":{},"action":"heartbeat","health":{"s":"failing","f":3,"rise":2,"fall":3,"e":"disk full"}}\n';
    assert.equal(encode(message).toString(), golden);
    assert.deepEqual(decode(bytes(golden)), { ok: true, message });
  });

  test('shutdown and hello need only a valid hostname', () => {
    expectDrop(bytes('{"action":"shutdown"}'), 'bad-field', 'hostname');
    expectDrop(bytes('{"action":"hello","hostname":{"x":1}}'), 'bad-field', 'hostname');
    assert.ok(decode(bytes('{"action":"hello","hostname":"x"}')).ok);
  });
});
