/**
 * `npm run bench:codec [-- --seconds S --json]`: what authentication costs per packet.
 * Decodes (and verifies) and encodes (and signs) real heartbeats with and without a
 * secret, and rejects forged ones; each case runs for S seconds (default 1), 5 rounds, and
 * the median packets/s is reported. Single core; no network.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createKeyring, AUTH_HEADER_BYTES } from '../wire/auth';
import { decode, encode } from '../wire/codec';
import type { HeartbeatMessage, JsonObject } from '../core/types';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);

function heartbeat(data: JsonObject): HeartbeatMessage {
  return { action: 'heartbeat', hostname: 'app-server-07.example.net', ip: '10.20.30.47', master: false, eligible: true, uptime: 86_400, data, iid: '3f9a1c2b7d4e6f80', seq: 123_456 };
}

const small = heartbeat({ role: 'worker', load: 0.42, jobs: 17 });
const large = heartbeat({ jobs: Array.from({ length: 80 }, (_, i) => ({ id: `job-${i}`, state: 'running', progress: i / 80 })) });

const derivation = performance.now();
const keyring = createKeyring('k3Hq9w2ZbT7yXv1mPq8sR4tU6nV0cE5d');
const deriveMs = performance.now() - derivation;
const rotating = createKeyring(['the next key, not yet signing....', 'k3Hq9w2ZbT7yXv1mPq8sR4tU6nV0cE5d']);

interface Case {
  name: string;
  bytes: number;
  run: () => unknown;
}

function cases(label: string, message: HeartbeatMessage): Case[] {
  const open = encode(message);
  const sealed = encode(message, keyring);
  const forged = Buffer.from(sealed);
  forged[AUTH_HEADER_BYTES + 5] = (forged[AUTH_HEADER_BYTES + 5] as number) ^ 1;
  const mustAccept = (datagram: Buffer, ring: typeof keyring | null) => () => {
    const result = decode(datagram, { keyring: ring });
    if (!result.ok) throw new Error(`bench datagram refused: ${result.reason}`);
    return result;
  };
  return [
    { name: `decode ${label}, no secret`, bytes: open.length, run: mustAccept(open, null) },
    { name: `decode+verify ${label}, secret`, bytes: sealed.length, run: mustAccept(sealed, keyring) },
    { name: `decode+verify ${label}, secret (by 2nd key)`, bytes: sealed.length, run: mustAccept(sealed, rotating) },
    { name: `encode ${label}, no secret`, bytes: open.length, run: () => encode(message) },
    { name: `encode+sign ${label}, secret`, bytes: sealed.length, run: () => encode(message, keyring) },
    { name: `reject forged ${label} (bad MAC)`, bytes: forged.length, run: () => decode(forged, { keyring }) },
    { name: `reject open-format ${label} (unauthenticated)`, bytes: open.length, run: () => decode(open, { keyring }) },
  ];
}

function measure(run: () => unknown): number {
  for (let i = 0; i < 2000; i++) run();
  const rates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let n = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    let now = start;
    while (now < end) {
      for (let i = 0; i < 256; i++) run();
      n += 256;
      now = performance.now();
    }
    rates.push(n / ((now - start) / 1000));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)] as number;
}

const results = [...cases('small heartbeat', small), ...cases('4 KB heartbeat', large)].map((c) => {
  const perSecond = measure(c.run);
  return { case: c.name, bytes: c.bytes, packetsPerSecond: Math.round(perSecond), microsecondsPerPacket: +(1e6 / perSecond).toFixed(2) };
});

if (values.json) {
  console.log(JSON.stringify({ node: process.version, keyDerivationMs: +deriveMs.toFixed(1), results }, null, 2));
} else {
  console.log(`bench:codec  node ${process.version}, ${seconds} s x ${rounds} rounds per case (median), one core`);
  console.log(`key derivation (scrypt, once per key at startup or reload): ${deriveMs.toFixed(1)} ms\n`);
  console.log(`${'case'.padEnd(52)} ${'bytes'.padStart(6)} ${'packets/s'.padStart(11)} ${'µs/packet'.padStart(10)}`);
  for (const r of results) {
    console.log(`${r.case.padEnd(52)} ${String(r.bytes).padStart(6)} ${r.packetsPerSecond.toLocaleString('en-US').padStart(11)} ${r.microsecondsPerPacket.toFixed(2).padStart(10)}`);
  }
}
