/**
 * The sender's timing on heartbeats (`tick` ms, `beats`): optional, round-trips, bounded
 * like the config keys they come from, and a bad value drops the packet as bad-field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../src/wire/codec';
import type { HeartbeatMessage } from '../src/protocol/messages';

const base: HeartbeatMessage = {
  action: 'heartbeat',
  hostname: 'host1',
  ip: '10.0.0.1',
  master: false,
  eligible: true,
  uptime: 5,
  data: {},
  iid: '0123456789abcdef',
  seq: 3,
};

function raw(fields: Record<string, unknown>): Buffer {
  return Buffer.from(
    JSON.stringify({ hostname: 'host1', ip: '10.0.0.1', master: 0, eligible: 1, uptime: 5, data: {}, action: 'heartbeat', ...fields }) +
      '\n',
  );
}

test('tick and beats round-trip, and are absent from the bytes when absent', () => {
  const withTiming = { ...base, tick: 20_000, beats: 3 };
  assert.deepEqual(decode(encode(withTiming)), { ok: true, message: withTiming });
  assert.doesNotMatch(encode(base).toString(), /tick|beats/);
  assert.deepEqual(decode(encode(base)), { ok: true, message: base });
});

test('the bounds are those of heartbeat_freq (10 ms to a day) and check_beats (1 to 1000)', () => {
  for (const [tick, beats] of [
    [10, 1],
    [86_400_000, 1000],
  ]) {
    const result = decode(raw({ tick, beats }));
    assert.ok(result.ok && result.message.action === 'heartbeat' && result.message.tick === tick && result.message.beats === beats);
  }
  for (const tick of [9, 86_400_001, 20.5, '20000', null, -1, Number.MAX_SAFE_INTEGER]) {
    assert.deepEqual(decode(raw({ tick })), { ok: false, reason: 'bad-field', detail: 'tick' }, `tick ${String(tick)}`);
  }
  for (const beats of [0, 1001, 2.5, '3', true]) {
    assert.deepEqual(decode(raw({ beats })), { ok: false, reason: 'bad-field', detail: 'beats' }, `beats ${String(beats)}`);
  }
});
