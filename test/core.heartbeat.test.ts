/**
 * Our heartbeat as we send it (src/core/heartbeat.ts; SPEC §5): the original's fields, and the
 * new ones only when they say something, so a cluster with no secret, no priority and no
 * checkpoint sends what the original reads.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeats, type Speaker } from '../src/core/heartbeat';
import type { ServerRecord } from '../src/elector/types';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { at, coreParts, hear, TICK } from './helpers/core-parts';

function speaker(changes: Partial<Speaker> = {}): Speaker {
  const self = { hostname: 'self', ip: '127.0.0.1', eligible: true, data: { x: 1 }, health: null } as unknown as ServerRecord;
  return {
    hostname: 'self',
    self,
    master: false,
    role: 'slave',
    masterHostname: '',
    fencingTerm: 0,
    priority: 0,
    startedAt: 0,
    checkpoint: null,
    ...changes,
  };
}

function sent(me: Speaker, mono: number, setup?: (parts: ReturnType<typeof coreParts>) => void): HeartbeatMessage {
  const parts = coreParts('self');
  setup?.(parts);
  new Heartbeats(me, { ...parts, ip: '127.0.0.1', instanceId: 'iid-self' }).send(at(mono));
  const out = parts.step.take(Infinity).send;
  assert.equal(out.length, 1);
  return out[0]?.message as HeartbeatMessage;
}

describe('Heartbeats', () => {
  test('a slave with nothing new to say sends the original fields, our timing and a sequence number only', () => {
    const message = sent(speaker(), 5500);
    assert.deepEqual(Object.keys(message).sort(), [
      'action',
      'beats',
      'data',
      'eligible',
      'hostname',
      'iid',
      'ip',
      'master',
      'seq',
      'tick',
      'uptime',
    ]);
    assert.equal(message.uptime, 5);
    assert.equal(message.tick, TICK);
    assert.deepEqual(message.data, { x: 1 });
  });

  test('the term, priority and checkpoint go only when they say something; the checkpoint only from a master', () => {
    const checkpoint = { t: 9, v: 1, d: 'x' };
    const slave = sent(speaker({ fencingTerm: 9, priority: 2, checkpoint }), 0);
    assert.equal(slave.term, 9);
    assert.equal(slave.prio, 2);
    assert.equal(slave.ckpt, undefined);
    const master = sent(speaker({ fencingTerm: 9, master: true, role: 'master', masterHostname: 'self', checkpoint }), 0);
    assert.deepEqual(master.ckpt, checkpoint);
    assert.equal(master.master, true);
    assert.equal(master.lead, undefined);
  });

  test('a slave names the master it follows and hears (lead), with how long ago it heard it', () => {
    const message = sent(speaker({ masterHostname: 'm' }), 400, (parts) => hear(parts, 'm', at(100), { master: true, term: 7 }));
    assert.deepEqual(message.lead, { h: 'm', age: 300, t: 7 });
  });

  test('a peer configured faster than us paces our heartbeats, and the heartbeat says so', () => {
    const message = sent(speaker(), 0, (parts) => hear(parts, 'fast', at(0), { tick: 250, beats: 3 }));
    assert.equal(message.tick, TICK);
    assert.equal(message.pace, 250);
  });
});
