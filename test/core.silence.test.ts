/**
 * What a silent peer's deadline does (src/core/silence.ts; SPEC §4), with explicit instants:
 * removed at its deadline, not before; kept while a follower's word says it is master, or
 * while it is locked (then master of nothing and a member no more); nobody removed while we
 * hold removals after a stall.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Silence } from '../src/core/silence';
import { at, coreParts, hear } from './helpers/core-parts';

function setup() {
  const parts = coreParts('self');
  const silence = new Silence(parts);
  const lost: string[] = [];
  const act = (mono: number, master = ''): void =>
    silence.act(at(mono), master, (hostname, lastHeard) => lost.push(`${hostname}@${lastHeard}`));
  return { parts, silence, lost, act };
}

describe('Silence', () => {
  test('a peer is removed at its deadline, not a millisecond before; the master we followed is reported first', () => {
    const { parts, silence, lost, act } = setup();
    hear(parts, 'm', at(0), { master: true });
    hear(parts, 'p', at(10));
    const dead = parts.timing.deadAfterMs;
    assert.equal(silence.due(at(dead - 1)), false);
    act(dead - 1, 'm');
    assert.equal(parts.members.size, 2);
    assert.equal(silence.due(at(dead)), true);
    act(dead, 'm');
    assert.deepEqual([...parts.members.hostnames()], ['p']);
    assert.deepEqual(lost, ['m@0']);
    const logs = parts.step.take(Infinity).logs.map((line) => line.message);
    assert.match(logs[0] as string, /^Master m silent for \d+ ms/);
    assert.match(logs[1] as string, /^Removing dead server from cluster: m/);
  });

  test('a silent master a follower still hears is kept on its word', () => {
    const { parts, silence, act } = setup();
    hear(parts, 'm', at(0), { master: true });
    const dead = parts.timing.deadAfterMs;
    hear(parts, 'f', at(dead - 10), { lead: { h: 'm', age: 0, t: 1 } });
    parts.relays.note('f', { h: 'm', age: 0, t: 1 }, dead - 10);
    assert.equal(silence.due(at(dead)), false);
    act(dead);
    assert.ok(parts.members.get('m'), 'kept');
    assert.equal(parts.words.relying, true);
  });

  test('a locked silent peer is kept, master of nothing and a member no more', () => {
    const { parts, silence, act } = setup();
    hear(parts, 'm', at(0), { master: true });
    parts.members.setLocked('m', true);
    const dead = parts.timing.deadAfterMs;
    assert.equal(silence.due(at(dead)), false);
    act(dead);
    const peer = parts.members.get('m');
    assert.ok(peer);
    assert.equal(peer.record.master, false);
    assert.deepEqual(parts.members.eligible, []);
    assert.deepEqual(parts.members.liveClaimants(at(dead)), []);
  });

  test('while removals are held (after a stall of ours), nobody is removed', () => {
    const { parts, silence, act } = setup();
    hear(parts, 'p', at(0));
    const dead = parts.timing.deadAfterMs;
    silence.holdUntil(dead + 500);
    assert.equal(silence.due(at(dead)), false);
    act(dead);
    assert.equal(parts.members.size, 1);
    act(dead + 500);
    assert.equal(parts.members.size, 0);
  });
});
