/**
 * Codec throughput: how many received heartbeats one core can decode and validate per
 * second, the per-packet cost every server pays for every peer on every tick.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { toolArgs } from './tool-args';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { AUTH_HEADER_BYTES, createKeyring, type Keyring } from '../src/wire/auth';
import { decode, encode } from '../src/wire/codec';

export interface CodecResult {
  name: string;
  /** Operations per second, in the fastest of the time slices. */
  perSecond: number;
  /** Microseconds per operation, in the fastest slice. */
  microsPerOp: number;
  ops: number;
  /** Operations per second in each slice. */
  sliceRates: number[];
  /** Average datagram size fed to it. */
  avgBytes: number;
  /** Set when the figure is not from this package's own API. */
  note?: string;
}

/**
 * Heartbeats as a running cluster sends them: every field of the original, an instance id
 * and a sequence number; half with the default empty `data`, half with a small app object.
 */
export function realisticHeartbeats(count = 64): Buffer[] {
  const packets: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const message: HeartbeatMessage = {
      action: 'heartbeat',
      hostname: `worker-${String(i).padStart(2, '0')}.example.lan`,
      ip: `10.1.${i >> 8}.${i & 255}`,
      master: i === 0,
      eligible: i % 7 !== 3,
      uptime: 86_400 + i * 37,
      data: i % 2 === 0 ? {} : { role: 'worker', version: '3.4.1', load: [0.42, 0.37, 0.31], jobs: i, queue: 'default' },
      iid: randomBytes(8).toString('hex'),
      seq: 100_000 + i,
    };
    packets.push(encode(message));
  }
  return packets;
}

const SLICES = 5;

/**
 * Run `op` over the pool in rounds, after a warm-up, in SLICES equal slices of time; the
 * figure is the fastest slice. Other processes on the machine only ever slow a slice down,
 * so the fastest one is the closest to the code's own cost.
 */
function measure(name: string, pool: Buffer[], seconds: number, op: (packet: Buffer) => void, note?: string): CodecResult {
  const round = (): void => {
    for (const packet of pool) op(packet);
  };
  const warmUntil = performance.now() + Math.min(200, seconds * 250);
  while (performance.now() < warmUntil) round();
  const rates: number[] = [];
  let total = 0;
  for (let slice = 0; slice < SLICES; slice++) {
    let ops = 0;
    const start = performance.now();
    const until = start + (seconds * 1000) / SLICES;
    let now = start;
    while (now < until) {
      round();
      ops += pool.length;
      now = performance.now();
    }
    total += ops;
    rates.push(ops / ((now - start) / 1000));
  }
  const best = Math.max(...rates);
  const avgBytes = pool.reduce((sum, p) => sum + p.length, 0) / pool.length;
  const result: CodecResult = { name, perSecond: best, microsPerOp: 1e6 / best, ops: total, sliceRates: rates.map(Math.round), avgBytes };
  if (note) result.note = note;
  return result;
}

export function benchCodec(seconds: number): CodecResult[] {
  const open = realisticHeartbeats();
  // Throwing on a rejected packet keeps a broken fixture from passing as a fast codec.
  const decodeWith =
    (keyring?: Keyring) =>
    (packet: Buffer): void => {
      const result = decode(packet, keyring ? { keyring } : {});
      if (!result.ok) throw new Error(`bench heartbeat rejected: ${result.reason} (${result.detail})`);
    };
  const keyring = createKeyring('bench-secret-of-reasonable-length');
  const messages = open.map((packet) => {
    const result = decode(packet);
    if (!result.ok) throw new Error('bench fixture does not decode');
    return result.message;
  });
  const sealed = messages.map((message) => encode(message, keyring));
  // Same bytes with one bit of the MAC flipped: what a forger without the key sends.
  const forged = sealed.map((datagram) => {
    const copy = Buffer.from(datagram);
    copy[AUTH_HEADER_BYTES - 1] = (copy[AUTH_HEADER_BYTES - 1] ?? 0) ^ 1;
    return copy;
  });
  let index = 0;
  const next = (): HeartbeatMessage => messages[index++ % messages.length] as HeartbeatMessage;
  return [
    measure('decode + validate, no secret', open, seconds, decodeWith()),
    measure('verify HMAC + decode + validate (secret_key)', sealed, seconds, decodeWith(keyring)),
    measure('reject a forged datagram (bad MAC)', forged, seconds, (datagram) => {
      if (decode(datagram, { keyring }).ok) throw new Error('a forged datagram was accepted');
    }),
    measure('encode, no secret (sender side)', open, seconds, () => void encode(next())),
    measure('encode + sign (secret_key, sender side)', open, seconds, () => void encode(next(), keyring)),
  ];
}

/** `npm run bench:codec [-- --seconds S] [--json]`: the codec figures alone. */
function main(): void {
  const { values } = toolArgs('usage: npm run bench:codec -- [--seconds S] [--json]', () =>
    parseArgs({ options: { seconds: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } }),
  );
  const results = benchCodec(Number(values.seconds));
  if (values.json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  console.log('codec, one core, fastest of 5 slices:');
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(48)} ${Math.round(r.perSecond).toLocaleString('en-US').padStart(10)}/s  (${r.microsPerOp.toFixed(2)} µs, ${Math.round(r.avgBytes)} B)`,
    );
  }
}

if (require.main === module) main();
