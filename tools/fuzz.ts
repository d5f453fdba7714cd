/**
 * `npm run fuzz -- --count N [--seed S]`: hostile datagrams against the codec and live
 * cores (see sim/fuzz.ts for the oracles). Exits 1 with the reproducing seed, index and
 * bytes on the first violation.
 */
import { parseArgs } from 'node:util';
import { fuzz, FuzzFailure } from '../sim/fuzz';
import { toolArgs } from './tool-args';

const USAGE = 'usage: npm run fuzz -- [--count N] [--seed S] [--quiet]';

const { values } = toolArgs(USAGE, () =>
  parseArgs({
    options: {
      count: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      quiet: { type: 'boolean', default: false },
    },
  }),
);

const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed)) {
  console.error(USAGE);
  process.exit(2);
}

try {
  const report = fuzz({
    seed,
    count,
    progressEvery: 10_000,
    onProgress: (done) => {
      if (!values.quiet) process.stderr.write(`  ${done} / ${count}\n`);
    },
  });
  const rate = Math.round(count / (report.ms / 1000));
  console.log(`fuzz: ${count} datagrams, seed ${seed}, ${(report.ms / 1000).toFixed(1)} s (${rate}/s), no violation`);
  console.log(JSON.stringify(report, null, 2));
} catch (err) {
  if (err instanceof FuzzFailure) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
