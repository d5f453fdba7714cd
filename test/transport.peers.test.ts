/**
 * The unicast peer table, with time passed in: who is sent to, what is learned from what
 * (only valid heartbeats, and gossip from trusted peers), what is forgotten, and the bounds
 * that hold under a flood.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Address } from '../src/protocol/messages';
import { PeerSet } from '../src/transport/peers';

const a = (address: string, port = 3014): Address => ({ address, port });
const SELF = a('10.0.0.1');
const FORGET = 900;
const LIVE = 400;

function table(maxLearned = 100): PeerSet {
  return new PeerSet({
    isSelf: (address) => address.address === SELF.address && address.port === SELF.port,
    maxLearned,
    forgetAfterMs: FORGET,
    liveForMs: LIVE,
  });
}

const keys = (addresses: Address[]): string[] => addresses.map((x) => `${x.address}:${x.port}`).sort();

describe('unicast peer table', () => {
  test('listed addresses are always targets, heard or not, and never forgotten; ourselves never', () => {
    const peers = table();
    peers.setConfigured('10.0.0.2', [a('10.0.0.2')], 0);
    peers.setConfigured('web', [a('10.0.0.3'), SELF], 0);
    assert.deepEqual(keys(peers.targets(0)), ['10.0.0.2:3014', '10.0.0.3:3014']);
    assert.deepEqual(keys(peers.targets(1e9)), ['10.0.0.2:3014', '10.0.0.3:3014']);
    assert.equal(peers.learn(SELF, 0), false);
    assert.deepEqual(peers.live(0), [], 'nothing heard yet, nothing to gossip');
  });

  test('a heartbeat makes an unlisted address a target until it falls silent for the forget window', () => {
    const peers = table();
    assert.equal(peers.learn(a('10.0.0.9'), 100), true, 'new: worth telling the others');
    assert.equal(peers.learn(a('10.0.0.9'), 200), false, 'already live: nothing new');
    assert.deepEqual(keys(peers.targets(200 + FORGET)), ['10.0.0.9:3014']);
    assert.deepEqual(peers.live(200 + LIVE), ['10.0.0.9:3014']);
    assert.deepEqual(peers.live(200 + LIVE + 1), [], 'no longer live: no longer gossiped');
    assert.deepEqual(keys(peers.targets(200 + FORGET + 1)), [], 'forgotten');
    assert.equal(peers.learnedCount, 0);
    assert.equal(peers.learn(a('10.0.0.9'), 5000), true, 'back after a silence: new again');
  });

  test('gossip is taken only from a listed or live peer, and what it names is probed, not trusted', () => {
    const peers = table();
    assert.deepEqual(peers.gossip(a('10.0.0.66'), [a('10.0.0.77')], 0), [], 'a stranger cannot add addresses');
    assert.deepEqual(peers.known(), []);
    peers.setConfigured('10.0.0.2', [a('10.0.0.2')], 0);
    assert.deepEqual(keys(peers.gossip(a('10.0.0.2'), [a('10.0.0.3'), a('10.0.0.4'), SELF, a('10.0.0.2')], 10)), [
      '10.0.0.3:3014',
      '10.0.0.4:3014',
    ]);
    assert.deepEqual(keys(peers.targets(10)), ['10.0.0.2:3014', '10.0.0.3:3014', '10.0.0.4:3014']);
    assert.equal(peers.trusts(a('10.0.0.3'), 10), false, 'a gossiped address is not trusted in turn');
    assert.deepEqual(peers.live(10), [], 'nor passed on');
    assert.deepEqual(peers.gossip(a('10.0.0.3'), [a('10.0.0.5')], 10), []);
    // 10.0.0.3 answers; 10.0.0.4 never does.
    peers.learn(a('10.0.0.3'), 50);
    assert.equal(peers.trusts(a('10.0.0.3'), 50), true);
    assert.deepEqual(keys(peers.targets(10 + FORGET + 1)), ['10.0.0.2:3014', '10.0.0.3:3014'], 'the silent one is dropped');
    // Gossip repeating a known address does not keep it alive.
    peers.gossip(a('10.0.0.2'), [a('10.0.0.3')], 50 + FORGET);
    assert.deepEqual(keys(peers.targets(50 + FORGET + 1)), ['10.0.0.2:3014']);
  });

  test('bounded: at most maxLearned unlisted addresses, a heard one evicting an unheard one', () => {
    const peers = table(3);
    peers.setConfigured('10.0.0.2', [a('10.0.0.2')], 0);
    peers.learn(a('10.0.0.2'), 0);
    const flood = Array.from({ length: 1000 }, (_, i) => a(`10.1.${i >> 8}.${i & 255}`));
    assert.equal(peers.gossip(a('10.0.0.2'), flood, 0).length, 3);
    assert.equal(peers.learnedCount, 3);
    assert.equal(peers.learn(a('10.9.0.1'), 1), true, 'a real heartbeat still gets in');
    assert.equal(peers.learnedCount, 3);
    assert.ok(peers.known().includes('10.9.0.1:3014'));
    for (let i = 0; i < 1000; i++) peers.learn(a(`10.2.${i >> 8}.${i & 255}`), 2);
    assert.equal(peers.learnedCount, 3);
    assert.equal(peers.targets(2).length, 4, 'one listed + three learned');
  });

  test('a name that resolves elsewhere: the old address stays while it is heard, then goes', () => {
    const peers = table();
    peers.setConfigured('web', [a('10.0.0.2'), a('10.0.0.3')], 0);
    peers.learn(a('10.0.0.2'), 10);
    peers.setConfigured('web', [a('10.0.0.4')], 20);
    assert.deepEqual(keys(peers.targets(20)), ['10.0.0.2:3014', '10.0.0.4:3014'], 'the unheard old address goes at once');
    assert.equal(peers.learnedCount, 1);
    assert.deepEqual(keys(peers.targets(10 + FORGET + 1)), ['10.0.0.4:3014']);
    // An address listed by two entries stays listed while either lists it.
    peers.setConfigured('10.0.0.4', [a('10.0.0.4')], 30);
    peers.setConfigured('web', [], 30);
    assert.deepEqual(keys(peers.targets(1e9)), ['10.0.0.4:3014']);
    assert.deepEqual([...peers.sources()], ['10.0.0.4']);
    // A learned address that becomes listed no longer counts against the bound.
    peers.learn(a('10.0.0.8'), 40);
    assert.equal(peers.learnedCount, 1);
    peers.setConfigured('10.0.0.8', [a('10.0.0.8')], 41);
    assert.equal(peers.learnedCount, 0);
  });
});
