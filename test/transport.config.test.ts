/**
 * The transport keys (transport, bind_ip, multicast_*, peers): defaults that keep the
 * original's broadcast, each bad value refused naming the key and the value; peer entry
 * and gossip address parsing; the gossip datagram in the codec; and the test guard that
 * keeps every transport's packets on this machine.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULT_CONFIG, validateConfig } from '../src/config';
import { canonicalIp, formatAddress, parseAddress, parsePeer, unicastProblem } from '../src/protocol/address';
import { decode, decodeWire, encode } from '../src/wire/codec';
import { MAX_GOSSIP_ADDRESSES } from '../src/protocol/limits';
import { assertLoopbackConfig } from '../tools/loopback';

function rejects(section: Record<string, unknown>, key: string, shown: string, why?: RegExp): void {
  assert.throws(
    () => validateConfig(section),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
      assert.equal(err.key, key, err.message);
      assert.ok(err.message.includes(`\`${key}\``), `message does not name ${key}: ${err.message}`);
      assert.ok(err.message.includes(shown), `message does not show ${shown}: ${err.message}`);
      if (why) assert.match(err.message, why);
      return true;
    },
  );
}

describe('transport config: defaults keep the original behaviour', () => {
  test('no transport keys: broadcast, bound to every IPv4 interface', () => {
    const settings = validateConfig({});
    assert.equal(settings.transport, 'broadcast');
    assert.equal(settings.bind_ip, '0.0.0.0');
    assert.deepEqual(settings.peers, []);
    assert.equal(settings.multicast_ttl, 1);
    assert.equal(settings.multicast_interface, undefined);
    assert.equal(DEFAULT_CONFIG.transport, 'broadcast');
  });

  test('pixl-server merges DEFAULT_CONFIG into the section: the merged section validates the same', () => {
    assert.deepEqual(validateConfig({ ...DEFAULT_CONFIG }), validateConfig({}));
  });

  test('multicast: the default group and TTL 1 (stay on the LAN); an IPv6 group or bind_ip selects IPv6', () => {
    const v4 = validateConfig({ transport: 'multicast' });
    assert.equal(v4.multicast_group, '239.255.30.14');
    assert.equal(v4.multicast_ttl, 1);
    assert.equal(v4.bind_ip, '0.0.0.0');
    const v6 = validateConfig({ transport: 'multicast', multicast_group: 'FF15::3014' });
    assert.equal(v6.multicast_group, 'ff15::3014');
    assert.equal(v6.bind_ip, '::');
    assert.equal(validateConfig({ transport: 'multicast', bind_ip: '::' }).multicast_group, 'ff15::3014');
    const iface = validateConfig({
      transport: 'multicast',
      multicast_group: 'ff12::1:2',
      multicast_interface: '::%eth0',
      multicast_ttl: 0,
    });
    assert.equal(iface.multicast_interface, '::%eth0');
    assert.equal(iface.multicast_ttl, 0);
  });

  test('unicast: the IP version follows bind_ip, else the peers; names alone mean IPv4', () => {
    assert.equal(validateConfig({ transport: 'unicast' }).bind_ip, '0.0.0.0');
    assert.equal(validateConfig({ transport: 'unicast', peers: ['10.0.0.2', 'db.internal:4000'] }).bind_ip, '0.0.0.0');
    assert.equal(validateConfig({ transport: 'unicast', peers: ['[fd00::2]:3014', 'fd00::3'] }).bind_ip, '::');
    assert.equal(validateConfig({ transport: 'unicast', peers: ['web'], bind_ip: '::' }).bind_ip, '::');
    const settings = validateConfig({ transport: 'unicast', bind_ip: '10.0.0.5', peers: ['10.0.0.6', 'web-2:3015', '10.0.0.6'] });
    assert.equal(settings.bind_ip, '10.0.0.5');
    assert.deepEqual(settings.peers, ['10.0.0.6', 'web-2:3015'], 'duplicates are dropped, order kept');
  });
});

describe('transport config: bad values name the key and the value', () => {
  test('transport', () => {
    rejects({ transport: 'tcp' }, 'transport', '"tcp"');
    rejects({ transport: 5 }, 'transport', '`5`');
  });

  test('bind_ip must be an address of this host, and the wildcard for broadcast and multicast', () => {
    rejects({ bind_ip: 'eth0' }, 'bind_ip', '"eth0"');
    rejects({ transport: 'unicast', bind_ip: '224.0.0.1' }, 'bind_ip', '224.0.0.1');
    rejects({ transport: 'unicast', bind_ip: '255.255.255.255' }, 'bind_ip', '255.255.255.255');
    rejects({ bind_ip: '10.0.0.5' }, 'bind_ip', '10.0.0.5', /"0\.0\.0\.0" with transport "broadcast".*broadcast_ip/);
    rejects({ bind_ip: '::' }, 'bind_ip', '"::"', /"0\.0\.0\.0"/);
    rejects({ transport: 'multicast', bind_ip: '10.0.0.5' }, 'bind_ip', '10.0.0.5', /multicast_interface picks/);
    rejects({ transport: 'multicast', multicast_group: '239.1.2.3', bind_ip: '::' }, 'bind_ip', '"::"');
  });

  test('multicast_group, multicast_ttl, multicast_interface', () => {
    rejects({ transport: 'multicast', multicast_group: '10.0.0.1' }, 'multicast_group', '10.0.0.1');
    rejects({ transport: 'multicast', multicast_group: 'fd00::1' }, 'multicast_group', 'fd00::1');
    rejects({ transport: 'multicast', multicast_group: 239 }, 'multicast_group', '`239`');
    rejects({ transport: 'multicast', multicast_ttl: 256 }, 'multicast_ttl', '`256`');
    rejects({ transport: 'multicast', multicast_ttl: -1 }, 'multicast_ttl', '`-1`');
    rejects({ transport: 'multicast', multicast_ttl: 1.5 }, 'multicast_ttl', '1.5');
    rejects({ transport: 'multicast', multicast_interface: 'eth0' }, 'multicast_interface', '"eth0"');
    rejects({ transport: 'multicast', multicast_interface: '::%eth0' }, 'multicast_interface', '::%eth0', /IPv4 address/);
    rejects(
      { transport: 'multicast', multicast_group: 'ff15::1', multicast_interface: '10.0.0.5' },
      'multicast_interface',
      '10.0.0.5',
      /::%eth0/,
    );
    rejects({ transport: 'multicast', multicast_interface: '239.0.0.1' }, 'multicast_interface', '239.0.0.1');
  });

  test('peers: an array of host, host:port or [IPv6]:port, one IP version, and only with unicast', () => {
    rejects({ transport: 'unicast', peers: 'a,b' }, 'peers', '"a,b"');
    rejects({ transport: 'unicast', peers: Array.from({ length: 3 }, (_, i) => `h${i}`), max_servers: 2 }, 'peers', 'h0');
    rejects({ transport: 'unicast', peers: ['ok', 5] }, 'peers[1]', '`5`');
    rejects({ transport: 'unicast', peers: ['host:0'] }, 'peers[0]', 'host:0', /port/);
    rejects({ transport: 'unicast', peers: ['host:70000'] }, 'peers[0]', 'host:70000');
    rejects({ transport: 'unicast', peers: ['host:'] }, 'peers[0]', '"host:"');
    rejects({ transport: 'unicast', peers: ['[10.0.0.1]:3014'] }, 'peers[0]', '10.0.0.1', /IPv6 address in brackets/);
    rejects({ transport: 'unicast', peers: ['[::1'] }, 'peers[0]', '[::1');
    rejects({ transport: 'unicast', peers: ['10.0.0.300'] }, 'peers[0]', '10.0.0.300');
    rejects({ transport: 'unicast', peers: ['bad name'] }, 'peers[0]', 'bad name');
    rejects({ transport: 'unicast', peers: ['-x.example'] }, 'peers[0]', '-x.example');
    rejects({ transport: 'unicast', peers: ['239.255.30.14'] }, 'peers[0]', '239.255.30.14', /multicast/);
    rejects({ transport: 'unicast', peers: ['255.255.255.255'] }, 'peers[0]', '255.255.255.255', /broadcast/);
    rejects({ transport: 'unicast', peers: ['0.0.0.0:3014'] }, 'peers[0]', '0.0.0.0', /unspecified/);
    rejects({ transport: 'unicast', peers: ['[ff02::1]:3014'] }, 'peers[0]', 'ff02::1');
    rejects({ transport: 'unicast', peers: ['10.0.0.1', '[fd00::1]:3014'] }, 'peers', 'fd00::1', /not both/);
    rejects({ transport: 'unicast', bind_ip: '10.0.0.5', peers: ['fd00::1'] }, 'peers[0]', 'fd00::1', /IPv4/);
    rejects({ peers: ['10.0.0.2'] }, 'peers', '10.0.0.2', /only when `transport` is "unicast" \(it is "broadcast"\)/);
    rejects({ transport: 'multicast', peers: ['10.0.0.2'] }, 'peers', '10.0.0.2', /"unicast"/);
    rejects({ multicast_group: '239.1.1.1' }, 'multicast_group', '239.1.1.1', /only when `transport` is "multicast"/);
    rejects({ transport: 'unicast', multicast_interface: '10.0.0.5' }, 'multicast_interface', '10.0.0.5', /"multicast"/);
    assert.doesNotThrow(() => validateConfig({ peers: [] }), 'an empty list is no list');
  });
});

describe('peer entries and gossiped addresses', () => {
  test('peer entries: host, host:port, IPv4, IPv6 with and without port; the port defaults to comm_port', () => {
    assert.deepEqual(parsePeer('web-2', 3014), { text: 'web-2', host: 'web-2', port: 3014, family: 0 });
    assert.deepEqual(parsePeer('Web_2.Example.com:4000', 3014), {
      text: 'Web_2.Example.com:4000',
      host: 'web_2.example.com',
      port: 4000,
      family: 0,
    });
    assert.deepEqual(parsePeer('10.0.0.2', 3014), { text: '10.0.0.2', host: '10.0.0.2', port: 3014, family: 4 });
    assert.deepEqual(parsePeer('10.0.0.2:1', 3014), { text: '10.0.0.2:1', host: '10.0.0.2', port: 1, family: 4 });
    assert.deepEqual(parsePeer('FD00:0:0::2', 3014), { text: 'FD00:0:0::2', host: 'fd00::2', port: 3014, family: 6 });
    assert.deepEqual(parsePeer('[fd00::2]:65535', 3014), { text: '[fd00::2]:65535', host: 'fd00::2', port: 65535, family: 6 });
    assert.deepEqual(parsePeer('[fd00::2]', 3014), { text: '[fd00::2]', host: 'fd00::2', port: 3014, family: 6 });
    assert.equal(typeof parsePeer('host:+80', 3014), 'string');
    assert.equal(typeof parsePeer('x'.repeat(301), 3014), 'string');
  });

  test('one spelling per address: the form the OS reports as a datagram source', () => {
    assert.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(canonicalIp('FE80::1%eth0'), 'fe80::1%eth0');
    assert.equal(formatAddress({ address: '::1', port: 5 }), '[::1]:5');
    assert.equal(formatAddress({ address: '10.0.0.1', port: 5 }), '10.0.0.1:5');
  });

  test('gossiped addresses: canonical literal ip:port of one server, nothing else', () => {
    assert.deepEqual(parseAddress('10.0.0.2:3014'), { address: '10.0.0.2', port: 3014 });
    assert.deepEqual(parseAddress('[fd00::2]:3014'), { address: 'fd00::2', port: 3014 });
    const refused: unknown[] = [
      'web:3014',
      '10.0.0.2',
      '[fd00::2]',
      '[FD00::2]:3014',
      '[fe80::1%eth0]:3014',
      '224.0.0.1:3014',
      '255.255.255.255:3014',
      '0.0.0.0:3014',
      '[::]:3014',
      '[ff02::1]:3014',
      '10.0.0.2:0',
      '10.0.0.2:99999',
      5,
      null,
      { address: '10.0.0.2' },
    ];
    for (const text of refused) assert.equal(parseAddress(text), null, String(text));
    assert.equal(unicastProblem('10.0.0.1'), null);
  });

  test('the gossip datagram: encoded as the shell asks, decoded only by decodeWire, validated strictly', () => {
    const datagram = encode({ action: 'peers', hostname: 'alpha', addrs: ['10.0.0.2:3014', '[fd00::2]:3014'] });
    assert.equal(datagram.toString(), '{"hostname":"alpha","action":"peers","addrs":["10.0.0.2:3014","[fd00::2]:3014"]}\n');
    assert.deepEqual(decodeWire(datagram), {
      ok: true,
      gossip: { action: 'peers', hostname: 'alpha', addrs: ['10.0.0.2:3014', '[fd00::2]:3014'] },
    });
    // The core's decoder (and every original server) sees an action it does not speak.
    assert.deepEqual(decode(datagram), { ok: false, reason: 'unknown-action', detail: 'peers' });
    const gossip = (fields: Record<string, unknown>): Buffer =>
      Buffer.from(JSON.stringify({ hostname: 'alpha', action: 'peers', addrs: [], ...fields }));
    assert.ok(decodeWire(gossip({})).ok, 'an empty list is valid');
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ hostname: '__proto__' }, 'hostname'],
      [{ addrs: '10.0.0.2:3014' }, 'addrs'],
      [{ addrs: ['10.0.0.2:3014', 'evil.example:3014'] }, 'addrs'],
      [{ addrs: ['224.0.0.251:5353'] }, 'addrs'],
      [{ addrs: ['255.255.255.255:3014'] }, 'addrs'],
      [{ addrs: [{ address: '10.0.0.2' }] }, 'addrs'],
      [{ addrs: Array.from({ length: MAX_GOSSIP_ADDRESSES + 1 }, (_, i) => `10.0.${i >> 8}.${i & 255}:3014`) }, 'addrs'],
    ];
    for (const [fields, detail] of bad) {
      const result = decodeWire(gossip(fields));
      assert.equal(result.ok, false, JSON.stringify(fields).slice(0, 80));
      if (!result.ok) assert.deepEqual([result.reason, result.detail], ['bad-field', detail]);
    }
    const proto = decodeWire(Buffer.from('{"hostname":"alpha","action":"peers","addrs":[],"__proto__":{"x":1}}'));
    assert.equal(proto.ok, false, 'the shape check runs for gossip too');
  });
});

describe('the test guard keeps every transport on this machine', () => {
  test('broadcast: a loopback broadcast address only', () => {
    assert.doesNotThrow(() => assertLoopbackConfig({ broadcast_ip: '127.255.255.255' }));
    assert.throws(() => assertLoopbackConfig({}), /Refusing/);
    assert.throws(() => assertLoopbackConfig({ transport: 'broadcast', broadcast_ip: '192.168.1.255' }), /Refusing/);
  });

  test('multicast: TTL 0 (never transmitted) or the loopback interface', () => {
    assert.doesNotThrow(() => assertLoopbackConfig({ transport: 'multicast', multicast_ttl: 0 }));
    assert.doesNotThrow(() => assertLoopbackConfig({ transport: 'multicast', multicast_interface: '127.0.0.1' }));
    assert.doesNotThrow(() => assertLoopbackConfig({ transport: 'multicast', multicast_group: 'ff15::1', multicast_interface: '::%lo' }));
    assert.throws(() => assertLoopbackConfig({ transport: 'multicast' }), /multicast_ttl 0 or the loopback interface/);
    assert.throws(() => assertLoopbackConfig({ transport: 'multicast', multicast_ttl: 1, multicast_interface: '10.0.0.5' }), /Refusing/);
    assert.throws(() => assertLoopbackConfig({ transport: 'multicast', multicast_interface: '::%eth0' }), /Refusing/);
  });

  test('unicast: bound to loopback, loopback literals as the only peers', () => {
    assert.doesNotThrow(() => assertLoopbackConfig({ transport: 'unicast', bind_ip: '127.0.0.2', peers: ['127.0.0.3', '127.0.0.4:5000'] }));
    assert.doesNotThrow(() => assertLoopbackConfig({ transport: 'unicast', bind_ip: '::1', peers: ['[::1]:5000'] }));
    assert.throws(
      () => assertLoopbackConfig({ transport: 'unicast', peers: ['127.0.0.3'] }),
      /bind_ip/,
      'a wildcard bind could hear an outside address',
    );
    assert.throws(() => assertLoopbackConfig({ transport: 'unicast', bind_ip: '10.0.0.5', peers: [] }), /bind_ip/);
    for (const peer of ['10.0.0.3', 'localhost', 'localhost:5000', '[fd00::1]:5000', 5]) {
      assert.throws(() => assertLoopbackConfig({ transport: 'unicast', bind_ip: '127.0.0.2', peers: [peer] }), /Refusing/, String(peer));
    }
    assert.throws(() => assertLoopbackConfig({ transport: 'tcp' }), /Refusing/);
  });
});
