/**
 * What a flood of forged packets costs, and what a cluster withstands.
 *
 *  1. Cost per packet, in process: the receive path of the component (decode, then the
 *     driver and the core) against a server whose table is full (max_servers), for each kind
 *     of packet a forger sends: junk, a heartbeat from an unknown hostname (refused: table
 *     full), a forged master claim under a known hostname, and, with a secret, a bad MAC and
 *     a replay.
 *  2. Rates withstood, on loopback: a cluster of real processes (broadcast 127.255.255.255)
 *     while a flooder process sends forged heartbeats under unknown hostnames at a rising
 *     rate; a rate is withstood when no real server was removed and the master stayed.
 */
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ElectionCore } from '../src/core/election';
import { Driver } from '../src/driver/driver';
import { encode, decodeWire } from '../src/wire/codec';
import { createKeyring, type Keyring } from '../src/wire/auth';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { ProcessCluster } from './process-cluster';
import { assertLoopback } from './loopback';
import { preciseNow } from './child';

export interface PacketCost {
  kind: string;
  secret: boolean;
  /** Microseconds per packet (median of slices). */
  us: number;
  perSecond: number;
  outcome: string;
}

export interface FloodRate {
  tickMs: number;
  rate: number;
  /** Packets the flooder actually sent per second. */
  sent: number;
  withstood: boolean;
  detail: string;
}

const TABLE = 1000;

function heartbeat(hostname: string, fields: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return {
    action: 'heartbeat',
    hostname,
    ip: '10.0.0.1',
    master: false,
    eligible: true,
    uptime: 5,
    data: { load: 0.5 },
    iid: '0123456789abcdef',
    seq: 1,
    tick: 1000,
    beats: 3,
    ...fields,
  };
}

/**
 * A server with a full table, driven as the component drives it (decode, then the driver).
 * `claimants`: every peer in it claims master (a forger's flood of claims under many
 * hostnames in an open cluster), each with a term of its own.
 */
function fullServer(keyring: Keyring | null, claimants = false): { receive: (datagram: Buffer) => string } {
  let clock = 0;
  const core = new ElectionCore({
    hostname: 'victim',
    ip: '10.0.0.250',
    instanceId: 'aaaaaaaaaaaaaaaa',
    tickMs: 1000,
    checkBeats: 3,
    maxServers: TABLE,
    verifyInstances: keyring !== null,
  });
  const driver = new Driver(
    core,
    {
      now: () => ({ mono: clock, wall: 1_767_225_600_000 + clock }),
      send: (_d, _m, _t, done) => done(),
      schedule: () => undefined,
      log: () => undefined,
      logs: () => false,
      emit: () => undefined,
    },
    { keyring, maxPacketBytes: 32768, maxDataBytes: 0 },
  );
  driver.run((c, now) => c.start(now));
  let outcome = '';
  const after = (out: { dropped?: string }): void => {
    outcome = out.dropped ?? 'applied';
  };
  const receive = (datagram: Buffer): string => {
    clock += 0.001;
    const result = decodeWire(datagram, { maxBytes: 32768, keyring });
    if (!result.ok) return result.reason;
    if ('gossip' in result) return 'gossip';
    driver.receive(result.message, { address: '10.0.0.9', port: 3014 }, after);
    return outcome;
  };
  // Fill the table (open cluster: heartbeats are believed; authenticated: the core admits
  // instances that echo its hellos, which this bench does not do, so the table stays small).
  for (let i = 1; i < TABLE; i++)
    receive(
      encode(
        heartbeat(`peer${i}`, {
          iid: `${i.toString(16).padStart(8, '0')}00000000`,
          seq: 1,
          ...(claimants ? { master: true, term: i } : {}),
        }),
        keyring,
      ),
    );
  return { receive };
}

/** Microseconds per packet received (the packets are made before the clock starts), median of slices. */
function timeIt(receive: (datagram: Buffer) => void, make: () => Buffer, seconds: number): number {
  const slices: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const packets = Array.from({ length: 2000 }, make);
    const started = performance.now();
    for (const packet of packets) receive(packet);
    slices.push(((performance.now() - started) * 1000) / packets.length);
  }
  slices.sort((a, b) => a - b);
  return slices[Math.floor(slices.length / 2)] as number;
}

export function packetCosts(seconds: number): PacketCost[] {
  const out: PacketCost[] = [];
  const open = fullServer(null);
  let n = 0;
  const cases: Array<[string, () => Buffer]> = [
    ['junk (not JSON)', () => Buffer.from('{"hostname": garbage\n')],
    ['heartbeat, unknown hostname, table full', () => encode(heartbeat(`zz${++n}`, { seq: n }))],
    [
      'master claim under a known hostname',
      () => encode(heartbeat('peer7', { master: true, iid: '00000007' + '00000000', seq: ++n + 10, term: n })),
    ],
  ];
  for (const [kind, make] of cases) {
    const sample = make();
    const outcome = open.receive(sample);
    const us = timeIt(open.receive, make, seconds);
    out.push({ kind, secret: false, us, perSecond: Math.round(1e6 / us), outcome });
  }
  // Per step the core looks at the live claimants: with 999 of them this was a walk over all
  // of them, and over them again for each follower's word.
  const claimed = fullServer(null, true);
  const claimCases: Array<[string, () => Buffer]> = [
    [
      'master claim, 999 claimants in the table',
      () => encode(heartbeat('peer7', { master: true, iid: '00000007' + '00000000', seq: ++n + 10, term: 7 })),
    ],
  ];
  for (const [kind, make] of claimCases) {
    const outcome = claimed.receive(make());
    const us = timeIt(claimed.receive, make, seconds);
    out.push({ kind, secret: false, us, perSecond: Math.round(1e6 / us), outcome });
  }
  const keyring = createKeyring('bench flood secret, long enough to be a key');
  const stranger = createKeyring('another key entirely, not ours at all!!');
  const auth = fullServer(keyring);
  const replayed = encode(heartbeat('peer3', { seq: 1 }), keyring);
  auth.receive(replayed);
  const authCases: Array<[string, () => Buffer]> = [
    ['bad MAC (a key not ours)', () => encode(heartbeat(`zz${++n}`, { seq: n }), stranger)],
    ['replay of a captured packet', () => replayed],
    ['junk (not sealed)', () => Buffer.from('{"hostname": garbage\n')],
  ];
  for (const [kind, make] of authCases) {
    const outcome = auth.receive(make());
    const us = timeIt(auth.receive, make, seconds);
    out.push({ kind, secret: true, us, perSecond: Math.round(1e6 / us), outcome });
  }
  return out;
}

function flood(port: number, rate: number, seconds: number): Promise<{ sent: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'flooder.js'), [String(port), String(rate), String(seconds)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (report) => resolve(report as { sent: number; ms: number }));
    child.once('error', reject);
  });
}

/** Rising rates of forged heartbeats against a 3-server cluster at `tickMs`, until one is not withstood. */
export async function floodRates(tickMs: number, rates: number[], secondsEach: number): Promise<FloodRate[]> {
  assertLoopback('127.255.255.255');
  const cluster = new ProcessCluster({ heartbeatFreq: tickMs / 1000, checkBeats: 3, multi: { max_servers: 1000 } });
  const hosts = ['alpha', 'bravo', 'charlie'];
  const out: FloodRate[] = [];
  try {
    await Promise.all(hosts.map((host) => cluster.start(host, {}, true)));
    await cluster.release(hosts);
    const { master } = await cluster.waitAgreed(Math.max(10_000, 10 * tickMs));
    for (const rate of rates) {
      const from = preciseNow();
      const result = await flood(cluster.port, rate, Math.max(secondsEach, (4 * tickMs) / 1000));
      await new Promise((resolve) => setTimeout(resolve, tickMs));
      const removed = cluster.reports.filter(
        (report) => report.t >= from && report.type === 'deleteserver' && hosts.includes(report.detail ?? ''),
      );
      const changes = cluster.reports.filter((report) => report.t >= from && report.type === 'masterchange');
      const agreed = await cluster.waitAgreed(Math.max(5000, 5 * tickMs)).catch(() => null);
      const withstood = removed.length === 0 && changes.length === 0 && agreed?.master === master;
      const sent = Math.round((result.sent * 1000) / result.ms);
      out.push({
        tickMs,
        rate,
        sent,
        withstood,
        detail: withstood
          ? 'no real server removed, master kept'
          : `${removed.length} real server(s) removed, ${changes.length} master change(s)`,
      });
      if (!withstood) break;
    }
  } finally {
    await cluster.stopAll();
  }
  return out;
}

export function floodTables(costs: PacketCost[], rates: FloodRate[]): string {
  const lines = ['cost per forged packet (decode + driver + core; a server with a full table of 1000), median of slices of 2000:'];
  lines.push('packet                                        secret   µs each   per second   outcome');
  for (const c of costs)
    lines.push(
      `${c.kind.padEnd(45)} ${(c.secret ? 'yes' : 'no').padEnd(6)} ${c.us.toFixed(2).padStart(9)} ${c.perSecond.toLocaleString('en').padStart(12)}   ${c.outcome}`,
    );
  if (rates.length === 0) return lines.join('\n');
  lines.push('');
  lines.push(
    'flood of forged heartbeats (unknown hostnames) against 3 servers on loopback, each rate for at least 4 ticks (one flooder process; "sent" is what it managed):',
  );
  lines.push('tick ms   asked /s   sent /s   withstood   ');
  for (const r of rates)
    lines.push(
      `${String(r.tickMs).padStart(7)} ${String(r.rate).padStart(10)} ${String(r.sent).padStart(9)}   ${r.withstood ? 'yes' : 'no '}         ${r.detail}`,
    );
  return lines.join('\n');
}

if (require.main === module) {
  void (async () => {
    const costs = packetCosts(0.5);
    const rates = [
      ...(await floodRates(1000, [10000, 30000, 60000, 100000], 3)),
      ...(await floodRates(200, [10000, 30000, 60000, 100000], 2)),
    ];
    console.log(floodTables(costs, rates));
  })();
}
