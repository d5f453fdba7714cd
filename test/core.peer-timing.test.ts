/**
 * The timing peers say they keep (src/core/peer-timing.ts): we pace to the fastest peer
 * configured faster than us, no faster than MAX_PACE_UP times our rate; a peer's other
 * timing is said once per timing, not per packet; a heartbeat keeps our pace by its `pace`,
 * else its tick, and an original server's (neither) is judged by ours.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTiming } from '../src/core/peer-timing';
import { MemberTable } from '../src/core/members';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { at, coreParts, hear, TICK } from './helpers/core-parts';

const heartbeat = (fields: Partial<HeartbeatMessage>): HeartbeatMessage =>
  ({
    action: 'heartbeat',
    hostname: 'p',
    ip: '127.0.0.1',
    master: false,
    eligible: true,
    uptime: 0,
    data: {},
    ...fields,
  }) as HeartbeatMessage;

describe('PeerTiming', () => {
  test('the fastest peer configured faster than us sets our pace; one that leaves or slows down no longer does', () => {
    const parts = coreParts();
    const members: MemberTable = parts.members;
    assert.equal(members.fastestTick(), Infinity);
    hear(parts, 'a', at(0), { tick: 500, beats: 3 });
    hear(parts, 'b', at(0), { tick: 200, beats: 3 });
    hear(parts, 'c', at(0), { tick: 5000, beats: 3 });
    assert.equal(members.fastestTick(), 200);
    hear(parts, 'b', at(10), { tick: TICK, beats: 3 });
    assert.equal(members.fastestTick(), 500);
    const a = members.get('a');
    assert.ok(a);
    members.remove('a', a);
    assert.equal(members.fastestTick(), Infinity);
  });

  test("a peer's timing that differs from ours is said once per timing, and an equal one never", () => {
    const parts = coreParts();
    const timing = new PeerTiming(parts.timing, parts.step);
    hear(parts, 'p', at(0));
    const peer = parts.members.get('p');
    assert.ok(peer);
    parts.step.take(Infinity);
    timing.note('p', peer, heartbeat({ tick: TICK, beats: 3 }));
    assert.equal(parts.step.take(Infinity).logs.length, 0);
    for (let i = 0; i < 5; i++) timing.note('p', peer, heartbeat({ tick: 100, beats: 3 }));
    const logs = parts.step.take(Infinity).logs;
    assert.equal(logs.length, 1);
    assert.match(logs[0]?.message as string, /TIMING MISMATCH: server p .* every 100 ms .* sends its heartbeats every 100 ms/);
    timing.note('p', peer, heartbeat({ tick: 10, beats: 3 }));
    assert.match(
      parts.step.take(Infinity).logs[0]?.message as string,
      /sends its heartbeats every 50 ms/,
      'at most MAX_PACE_UP times our rate',
    );
  });

  test('a heartbeat keeps our pace by its pace, else its tick; one with neither (the original) is judged by ours', () => {
    const timing = new PeerTiming(coreParts().timing, coreParts().step);
    assert.equal(timing.keepsOurPace(heartbeat({})), true);
    assert.equal(timing.keepsOurPace(heartbeat({ tick: TICK })), true);
    assert.equal(timing.keepsOurPace(heartbeat({ tick: 2 * TICK })), false);
    assert.equal(timing.keepsOurPace(heartbeat({ tick: 2 * TICK, pace: TICK })), true);
  });
});
