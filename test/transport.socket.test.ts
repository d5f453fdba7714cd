/**
 * Each transport on real sockets, on this machine only (the guard refuses anything else):
 * multicast IPv4 on loopback (TTL 0), unicast IPv4 with one 127.0.0.x per server and a
 * join through one listed peer, unicast IPv6 on ::1 with one port per server, and
 * multicast IPv6 inside a private network namespace (skipped, saying why, without root).
 * Every cluster elects one master and fails over after a SIGKILL. Every wait is "until
 * observed, or fail at a deadline".
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { ProcessCluster } from '../tools/process-cluster';
import { freeUdpPort } from '../tools/loopback';
import { createNetns } from '../tools/netns';
import { UdpUnicastTransport } from '../src/transport/unicast';
import type { Address } from '../src/protocol/messages';
import { pauseUntil, waitFor } from './helpers/wait';
import { logFolder, makeServer as makePixlServer, start, stop } from './helpers/pixl';

const WAIT_MS = 15_000;
/**
 * A tock of 750 ms. These tests are about which addresses the transports reach, not timing: a
 * tock of 300 ms was within the stalls of a 2-CPU machine running four test files beside other
 * work, and such a stall is a failover by design (a joiner took over, or was not heard in time).
 */
const TIMING = { heartbeatFreq: 0.25, checkBeats: 3 };

/** Ask every live member for its state until `predicate` holds (each answer re-checks it). */
async function pollStates(cluster: ProcessCluster, predicate: () => boolean, what: string): Promise<void> {
  const ask = (): void => {
    for (const host of cluster.live()) cluster.command(host, { cmd: 'state' });
  };
  ask();
  const timer = setInterval(ask, cluster.tickMs);
  try {
    await cluster.waitFor(predicate, WAIT_MS, what);
  } finally {
    clearInterval(timer);
  }
}

/**
 * The scenario every transport must pass: everyone finds everyone, one master agreed by
 * all, SIGKILL of it, the first-sorting survivor takes over. Which server wins the cold
 * start is the core's business (and a loaded machine can skew "simultaneous" starts by
 * more than a test tock), so the master is whoever all agree on; the failover target is
 * determined (SPEC 4.4).
 */
async function electAndFailOver(cluster: ProcessCluster, hosts: string[]): Promise<void> {
  const everyone = hosts.join();
  await cluster.waitFor(() => hosts.every((host) => cluster.state(host)?.servers.join() === everyone), WAIT_MS, 'every server to know all');
  const { master } = await cluster.waitAgreed(WAIT_MS);
  cluster.kill(master, 'SIGKILL');
  const survivors = hosts.filter((host) => host !== master);
  await cluster.waitAgreed(WAIT_MS, survivors[0]);
  await cluster.waitFor(
    () => survivors.every((host) => cluster.state(host)?.servers.join() === survivors.join()),
    WAIT_MS,
    `${master} to be removed everywhere`,
  );
}

async function oneSocketEach(cluster: ProcessCluster): Promise<void> {
  await pollStates(
    cluster,
    () => cluster.live().every((host) => cluster.reports.some((r) => r.host === host && r.type === 'state')),
    'state reports',
  );
  for (const host of cluster.live()) assert.equal(cluster.state(host)?.socketsOpened, 1, host);
}

describe('multicast, IPv4, on loopback (TTL 0, interface 127.0.0.1)', () => {
  const cluster = new ProcessCluster({ ...TIMING, multi: { transport: 'multicast', multicast_ttl: 0, multicast_interface: '127.0.0.1' } });
  const hosts = ['bravo', 'charlie', 'delta'];
  before(async () => {
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    await cluster.release(hosts);
  });
  after(() => cluster.stopAll());

  test('elects the first-sorting server and fails over after a SIGKILL', () => electAndFailOver(cluster, hosts));
  test('one socket per process', () => oneSocketEach(cluster));
});

describe('unicast, IPv4, one loopback address per server (bind_ip 127.0.0.x)', () => {
  const cluster = new ProcessCluster({ ...TIMING, multi: { transport: 'unicast' } });
  const ip: Record<string, string> = { alpha: '127.0.0.5', bravo: '127.0.0.2', charlie: '127.0.0.3', delta: '127.0.0.4' };
  let port = 0;
  const at = (host: string): string => `${ip[host]}:${port}`;
  before(async () => {
    port = await freeUdpPort();
    // bravo lists nobody and is found by the others; they list only bravo.
    await Promise.all([
      cluster.start('bravo', { comm_port: port, bind_ip: ip.bravo }, true),
      cluster.start('charlie', { comm_port: port, bind_ip: ip.charlie, peers: [ip.bravo] }, true),
      cluster.start('delta', { comm_port: port, bind_ip: ip.delta, peers: [ip.bravo] }, true),
    ]);
    await cluster.release(['bravo', 'charlie', 'delta']);
  });
  after(() => cluster.stopAll());

  let master = '';

  test('a cold start through one listed peer: everyone learns everyone, one master', async () => {
    const three = ['bravo', 'charlie', 'delta'];
    await cluster.waitFor(
      () => three.every((host) => cluster.state(host)?.servers.join() === three.join()),
      WAIT_MS,
      'every server to know all',
    );
    master = (await cluster.waitAgreed(WAIT_MS)).master;
    // charlie and delta list only bravo: they learned each other from bravo's gossip.
    await pollStates(
      cluster,
      () => cluster.state('charlie')?.peers.join() === [at('bravo'), at('delta')].join(),
      'charlie to send to bravo and delta',
    );
    await pollStates(
      cluster,
      () => cluster.state('bravo')?.peers.join() === [at('charlie'), at('delta')].join(),
      'bravo to send to the two that found it',
    );
  });

  test('a joiner that lists only one peer learns the whole cluster from it, and does not take over', async () => {
    const listed = master === 'charlie' ? 'delta' : 'charlie';
    const mastersBefore = cluster.reports.filter((r) => r.type === 'master').length;
    await cluster.start('alpha', { comm_port: port, bind_ip: ip.alpha, peers: [ip[listed] as string] });
    const joinedAt = Date.now();
    await cluster.waitFor(() => cluster.state('alpha')?.masterHostname === master, WAIT_MS, `alpha to learn the master, ${master}`);
    const four = ['alpha', 'bravo', 'charlie', 'delta'];
    await cluster.waitFor(
      () => four.every((host) => cluster.state(host)?.servers.join() === four.join()),
      WAIT_MS,
      'every server to know all four',
    );
    await pollStates(
      cluster,
      () => cluster.state('alpha')?.peers.join() === [at('bravo'), at('charlie'), at('delta')].join(),
      'alpha to send to all three',
    );
    // A joiner that wrongly claimed would do so when its first tock of listening ends: a window
    // of two tocks from its start, in which no master may be elected.
    await pauseUntil(joinedAt + 2 * cluster.tockMs);
    await cluster.waitAgreed(WAIT_MS, master);
    assert.equal(cluster.reports.filter((r) => r.type === 'master').length, mastersBefore, 'a master was elected while one was running');
  });

  test('SIGKILL of the master: the joiner, first in sort order, takes over; the dead address is forgotten where it was only learned', async () => {
    cluster.kill(master, 'SIGKILL');
    await cluster.waitAgreed(WAIT_MS, 'alpha');
    const dead = at(master);
    await pollStates(cluster, () => cluster.state('alpha')?.peers.includes(dead) === false, 'alpha to forget the dead master');
    // A listed address is kept, for when the server comes back.
    if (master === 'bravo') assert.ok(cluster.state('charlie')?.peers.includes(dead));
  });

  test('one socket per process', () => oneSocketEach(cluster));
});

describe('unicast, IPv6 on ::1, one port per server ([::1]:port peers)', () => {
  const cluster = new ProcessCluster({ ...TIMING, multi: { transport: 'unicast', bind_ip: '::1' } });
  const hosts = ['bravo', 'charlie', 'delta'];
  before(async () => {
    const ports = await Promise.all(hosts.map(() => freeUdpPort(6)));
    // A ring: each lists only the next; the rest is learned.
    await Promise.all(
      hosts.map((host, i) => cluster.start(host, { comm_port: ports[i], peers: [`[::1]:${ports[(i + 1) % hosts.length]}`] }, true)),
    );
    await cluster.release(hosts);
  });
  after(() => cluster.stopAll());

  test('elects the first-sorting server and fails over after a SIGKILL', () => electAndFailOver(cluster, hosts));
});

const netns = createNetns();
describe('multicast, IPv6, in a private network namespace', { skip: 'skip' in netns ? netns.skip : false }, () => {
  if ('skip' in netns) return;
  const cluster = new ProcessCluster({
    ...TIMING,
    launcher: netns.launcher,
    multi: { transport: 'multicast', multicast_group: 'ff15::3014', multicast_ttl: 0, multicast_interface: `::%${netns.interface}` },
  });
  const hosts = ['bravo', 'charlie', 'delta'];
  before(async () => {
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    await cluster.release(hosts);
  });
  after(async () => {
    await cluster.stopAll();
    netns.remove();
  });

  test('elects the first-sorting server and fails over after a SIGKILL', () => electAndFailOver(cluster, hosts));
});

// ---- in this process: what unicast learns from, reload, bind conflicts, names ----------

const logs = logFolder('psm-transport-');
after(() => logs.remove());

/** A server of these tests: unicast from its own 127.0.0.x (`section` names it and the port). */
function makeServer(hostname: string, section: { comm_port: number } & Record<string, unknown>): PixlServer {
  return makePixlServer(hostname, section.comm_port, logs.dir, { transport: 'unicast', ...section });
}

const component = (server: PixlServer): MultiServer => server.MultiServer as MultiServer;
const peersOf = (server: PixlServer): string[] => component(server).transport?.peers?.().sort() ?? [];

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;
}

function bindAt(address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(port, address, () => resolve(socket));
  });
}

function sendFrom(socket: dgram.Socket, text: string, to: Address): Promise<void> {
  return new Promise((resolve) => socket.send(Buffer.from(text), to.port, to.address, () => resolve()));
}

describe('unicast: what makes an address a destination', () => {
  test('only a valid heartbeat; gossip only from a live peer; silent addresses are forgotten', async () => {
    const port = await freeUdpPort();
    // A tick of 0.25 s, not 0.05: the last check is that the lone server is still master, and at
    // 0.05 s a loaded machine's event-loop delays read as stalls, after which it listens again.
    const server = makeServer('target', { comm_port: port, bind_ip: '127.0.0.20', heartbeat_freq: 0.25 });
    await start(server);
    const attacker = await bindAt('127.0.0.21', port);
    const received: Array<{ action: string; addrs?: string[] }> = [];
    attacker.on('message', (datagram) => received.push(JSON.parse(datagram.toString()) as { action: string }));
    const got = (action: string): boolean => received.some((message) => message.action === action);
    const target = { address: '127.0.0.20', port };
    const stats = component(server).stats;
    try {
      const strangers = [
        'garbage',
        '{"action":"heartbeat","hostname":"x"}',
        '{"action":"shutdown","hostname":"mallory"}',
        `{"action":"peers","hostname":"mallory","addrs":["127.0.0.66:${port}"]}`,
        '{"action":"whatever","hostname":"mallory"}',
      ];
      const before = stats.packetsIn;
      for (const text of strangers) await sendFrom(attacker, text, target);
      await waitFor(() => stats.packetsIn >= before + strangers.length, 'the datagrams to arrive');
      assert.deepEqual(peersOf(server), [], "an invalid datagram or a stranger's gossip added a destination");

      const heartbeat = {
        hostname: 'mallory',
        ip: '127.0.0.21',
        master: 0,
        eligible: 0,
        uptime: 1,
        data: {},
        action: 'heartbeat',
        iid: 'abcdef0123456789',
        seq: 1,
      };
      await sendFrom(attacker, JSON.stringify(heartbeat), target);
      await waitFor(() => peersOf(server).length === 1, 'the heartbeat to be learned');
      assert.deepEqual(peersOf(server), [`127.0.0.21:${port}`]);
      await waitFor(() => got('heartbeat'), 'heartbeats to be sent to the learned address');
      // Now a live peer, its gossip is taken: the address is probed, not trusted.
      await sendFrom(attacker, `{"action":"peers","hostname":"mallory","addrs":["127.0.0.66:${port}","127.0.0.20:${port}"]}`, target);
      await waitFor(() => peersOf(server).length === 2, 'the gossiped address to be probed');
      assert.deepEqual(peersOf(server), [`127.0.0.21:${port}`, `127.0.0.66:${port}`], 'ourselves are never a destination');
      // Our gossip names what we hear, never what we were told.
      await waitFor(() => got('peers'), 'our gossip');
      for (const message of received) if (message.action === 'peers') assert.deepEqual(message.addrs, [`127.0.0.21:${port}`]);
      // Silence: both are forgotten after a few tocks.
      await waitFor(() => peersOf(server).length === 0, 'silent addresses to be forgotten');
      assert.equal(component(server).master, true, 'mallory (ineligible) changed nothing');
    } finally {
      attacker.close();
      await stop(server);
    }
  });

  test('a reload adds peers at once; keys that shape the socket wait for a restart', async () => {
    const port = await freeUdpPort();
    const x = makeServer('xray', { comm_port: port, bind_ip: '127.0.0.40' });
    const y = makeServer('yankee', { comm_port: port, bind_ip: '127.0.0.41' });
    await start(x);
    await start(y);
    try {
      await waitFor(() => component(x).master && component(y).master, 'two lone masters (nobody listed)');
      const config = x.config as unknown as { set(key: string, value: unknown): void; refreshSubs(): void };
      const section = {
        comm_port: port,
        heartbeat_freq: 0.05,
        check_beats: 3,
        transport: 'unicast',
        bind_ip: '127.0.0.40',
        peers: ['127.0.0.41'],
      };
      config.set('MultiServer', section);
      config.refreshSubs();
      assert.deepEqual(peersOf(x), [`127.0.0.41:${port}`]);
      // Two masters meet: the later-sorting one relinquishes.
      await waitFor(() => component(x).master && !component(y).master && component(y).masterHostname === 'xray', 'one master, xray');
      config.set('MultiServer', { ...section, bind_ip: '127.0.0.42' });
      config.refreshSubs();
      assert.equal(component(x).settings?.bind_ip, '127.0.0.40', 'bind_ip changed without a restart');
    } finally {
      await stop(x);
      await stop(y);
    }
  });

  test('two servers on one address and port: the second fails to open instead of sharing the datagrams', async () => {
    const port = await freeUdpPort();
    const options = {
      port,
      bindIp: '127.0.0.50',
      family: 4 as const,
      peers: [],
      tickMs: 50,
      checkBeats: 3,
      maxLearned: 10,
      maxPacketBytes: 32768,
    };
    const first = new UdpUnicastTransport(options);
    const second = new UdpUnicastTransport(options);
    await first.open();
    const handles = udpHandles();
    try {
      await assert.rejects(second.open(), /EADDRINUSE/);
      await waitFor(() => udpHandles() <= handles, 'the failed socket to be closed');
    } finally {
      await first.close();
    }
  });
});

describe('unicast: names in peers', () => {
  test('are looked up at startup and again later; an address the name no longer gives is dropped', async () => {
    const port = await freeUdpPort();
    const b = await bindAt('127.0.0.31', port);
    const c = await bindAt('127.0.0.32', port);
    const got = { b: 0, c: 0 };
    b.on('message', () => got.b++);
    c.on('message', () => got.c++);
    let answer = '127.0.0.31';
    const lookups: string[] = [];
    const transport = new UdpUnicastTransport({
      port,
      bindIp: '127.0.0.30',
      family: 4,
      peers: ['peer.test'],
      tickMs: 50,
      checkBeats: 3,
      maxLearned: 10,
      maxPacketBytes: 32768,
      resolveEveryMs: 20,
      lookup: async (host, family) => {
        lookups.push(`${host}/${family}`);
        return [answer];
      },
    });
    await transport.open();
    try {
      assert.deepEqual(transport.peers(), [`127.0.0.31:${port}`], 'resolved before open() resolves');
      transport.send(Buffer.from('{}'));
      await waitFor(() => got.b === 1, 'the datagram at the resolved address');
      answer = '127.0.0.32';
      // Sending is what drives re-resolution (no timer of its own): send until it has moved.
      await waitFor(() => {
        transport.send(Buffer.from('{}'));
        return got.c > 0;
      }, 'the datagrams to follow the name');
      assert.deepEqual(transport.peers(), [`127.0.0.32:${port}`], 'the never-heard old address is gone');
      assert.deepEqual([...new Set(lookups)], ['peer.test/4']);
    } finally {
      await transport.close();
      b.close();
      c.close();
    }
  });
});
