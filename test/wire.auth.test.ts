/**
 * The authenticated envelope and the secret_key config: what a packet looks like on the
 * wire with and without a secret, and which keys verify it during a rotation.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AUTH_HEADER_BYTES, createKeyring } from '../src/wire/auth';
import { decode, encode, type DecodeResult } from '../src/wire/codec';
import { ConfigError, validateConfig } from '../src/config';
import type { HeartbeatMessage } from '../src/protocol/messages';

const SECRET = 'correct horse battery staple 42';
const keyring = createKeyring(SECRET);

const heartbeat: HeartbeatMessage = {
  action: 'heartbeat',
  hostname: 'alpha',
  ip: '10.1.2.3',
  master: true,
  eligible: true,
  uptime: 42,
  data: { jobs: 3 },
  iid: '0123456789abcdef',
  seq: 7,
};

function reason(result: DecodeResult): string {
  return result.ok ? 'accepted' : result.reason;
}

describe('without a secret: the original format', () => {
  test('a heartbeat is the original JSON + newline, byte for byte, with iid and seq after action', () => {
    assert.equal(
      encode(heartbeat).toString('utf8'),
      '{"hostname":"alpha","ip":"10.1.2.3","master":1,"eligible":1,"uptime":42,"data":{"jobs":3},"action":"heartbeat","iid":"0123456789abcdef","seq":7}\n',
    );
  });

  test('an authenticated datagram reaching a server without a secret is dropped as such (a misconfiguration worth naming)', () => {
    assert.equal(reason(decode(encode(heartbeat, keyring))), 'unexpected-auth');
  });
});

describe('with a secret', () => {
  test('round trip: the message comes back whole, verified by key 0', () => {
    const result = decode(encode(heartbeat, keyring), { keyring });
    assert.ok(result.ok);
    assert.deepEqual(result.message, heartbeat);
    assert.equal(result.keyIndex, 0);
  });

  test('the datagram does not start with "{", so an original server ignores it, and the secret is nowhere in it', () => {
    const datagram = encode(heartbeat, keyring);
    assert.notEqual(datagram[0], 0x7b);
    assert.equal(datagram.includes(Buffer.from(SECRET)), false);
    // The body stays readable JSON (HMAC authenticates, it does not encrypt).
    assert.equal(datagram.subarray(AUTH_HEADER_BYTES).toString('utf8'), encode(heartbeat).toString('utf8'));
  });

  test('a flipped bit anywhere (header, key id, MAC, body) is refused', () => {
    const datagram = encode(heartbeat, keyring);
    const seen = new Set<string>();
    for (let byte = 0; byte < datagram.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(datagram);
        copy[byte] = (copy[byte] as number) ^ (1 << bit);
        const result = decode(copy, { keyring });
        assert.equal(result.ok, false, `byte ${byte} bit ${bit} accepted`);
        seen.add(reason(result));
      }
    }
    assert.deepEqual([...seen].sort(), ['bad-mac', 'unauthenticated', 'unknown-key']);
  });

  test('an open-format packet is refused as unauthenticated', () => {
    assert.equal(reason(decode(encode(heartbeat), { keyring })), 'unauthenticated');
  });

  test('a packet signed with another key is refused as unknown-key', () => {
    const other = createKeyring('some other cluster secret');
    assert.equal(reason(decode(encode(heartbeat, other), { keyring })), 'unknown-key');
  });

  test('authenticated packets must carry iid and seq: replay protection rests on them', () => {
    const { iid: _iid, seq: _seq, ...anonymous } = heartbeat;
    const result = decode(encode(anonymous, keyring), { keyring });
    assert.equal(reason(result), 'bad-field');
  });

  test('rotation: [new, old] signs with new and verifies both; after the old key is removed its packets are refused', () => {
    const old = createKeyring('the old cluster secret!');
    const during = createKeyring(['the new cluster secret!', 'the old cluster secret!']);
    const after = createKeyring('the new cluster secret!');
    const fromOld = encode(heartbeat, old);
    const fromDuring = encode(heartbeat, during);
    const fromOldResult = decode(fromOld, { keyring: during });
    assert.ok(fromOldResult.ok);
    assert.equal(fromOldResult.keyIndex, 1, 'verified by the second (old) key');
    assert.equal(decode(fromDuring, { keyring: during }).ok, true);
    assert.equal(decode(fromDuring, { keyring: after }).ok, true, 'the new key signs during the rotation');
    assert.equal(reason(decode(fromDuring, { keyring: old })), 'unknown-key', 'an un-upgraded server cannot read the new key');
    assert.equal(reason(decode(fromOld, { keyring: after })), 'unknown-key', 'old key after rotation');
  });
});

describe('config: secret_key and max_data_bytes', () => {
  test('unset by default (the original format); a string or a list of strings is accepted', () => {
    assert.deepEqual(validateConfig({}).secret_key, []);
    assert.deepEqual(validateConfig({ secret_key: 'k' }).secret_key, ['k']);
    assert.deepEqual(validateConfig({ secret_key: ['new', 'old'] }).secret_key, ['new', 'old']);
    assert.equal(validateConfig({}).max_data_bytes, 0, 'no limit of its own: the packet limit bounds data');
  });

  test('a bad secret_key fails naming the key and its shape, never its content', () => {
    for (const bad of ['', [], ['ok-secret', ''], ['ok-secret', 3], 42, { key: 'x' }, new Array(17).fill('k')]) {
      assert.throws(
        () => validateConfig({ secret_key: bad }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.key, 'secret_key');
          assert.match(err.message, /secret_key/);
          assert.match(err.message, /value not shown/);
          assert.doesNotMatch(err.message, /ok-secret/);
          assert.doesNotMatch(JSON.stringify(err.value), /ok-secret/);
          return true;
        },
        `accepted ${JSON.stringify(bad)}`,
      );
    }
  });

  test('max_data_bytes must be an integer within the UDP payload', () => {
    assert.throws(() => validateConfig({ max_data_bytes: -1 }), /max_data_bytes.*`-1`/);
    assert.throws(() => validateConfig({ max_data_bytes: 70000 }), /max_data_bytes.*`70000`/);
    assert.throws(() => validateConfig({ max_data_bytes: '1k' }), /max_data_bytes/);
    assert.equal(validateConfig({ max_data_bytes: 1024 }).max_data_bytes, 1024);
  });
});
