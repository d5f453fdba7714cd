/**
 * The layering rules (.dependency-cruiser.cjs, run by `npm run lint:deps` before every
 * `npm test`) can fail: the real checker with the real config, on a small tree laid out as
 * ours, each file breaking one rule. A rule that stopped matching (a renamed folder, a typo
 * in a pattern) would pass the repository and fail here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const DEPCRUISE = path.join(ROOT, 'node_modules', '.bin', 'depcruise');

/** Each file of the tree, and the rule (with the import) it must be reported under; null: breaks none. */
const TREE: Record<string, { source: string; breaks: string | null }> = {
  'src/protocol/messages.ts': { source: 'export interface Address { address: string; port: number }\n', breaks: null },
  'src/protocol/limits.ts': {
    source: "import { MAX_SEND } from './cycle';\nexport const MAX_UDP_PAYLOAD = MAX_SEND;\n",
    breaks: 'no-circular',
  },
  'src/protocol/cycle.ts': {
    source:
      "import { MAX_UDP_PAYLOAD } from './limits';\nexport const MAX_SEND = 1;\nexport const twice = (): number => MAX_UDP_PAYLOAD * 2;\n",
    breaks: 'no-circular',
  },
  'src/protocol/address.ts': {
    source: "import type { Settings } from '../config';\nexport type Family = Settings['family'];\n",
    breaks: 'protocol-is-the-bottom',
  },
  'src/config.ts': { source: 'export interface Settings { family: 4 | 6 }\n', breaks: null },
  'src/transport/udp.ts': {
    source: "import type { Settings } from '../config';\nexport class Udp { settings: Settings | null = null }\n",
    breaks: 'transport-over-protocol',
  },
  'src/core/election.ts': {
    source: "import { Udp } from '../transport/udp';\nexport const socket = new Udp();\n",
    breaks: 'core-over-elector',
  },
  'src/core/clock.ts': {
    source: "import { setTimeout as sleep } from 'node:timers/promises';\nexport const later = sleep;\n",
    breaks: 'machines-without-runtime-builtins',
  },
  'src/core/rank.ts': { source: "import { compareRank } from '../elector/rank';\nexport const rank = compareRank;\n", breaks: null },
  'src/elector/rank.ts': { source: 'export const compareRank = (a: string, b: string): number => (a < b ? -1 : 1);\n', breaks: null },
  'src/elector/types.ts': {
    source: "import type { Sock } from '../core/types';\nexport type S = Sock;\n",
    breaks: 'elector-over-protocol',
  },
  'src/core/types.ts': { source: "import type { Socket } from 'node:dgram';\nexport type Sock = Socket;\n", breaks: null },
  'src/wire/codec.ts': { source: "import { socket } from '../core/election';\nexport const s = socket;\n", breaks: 'wire-over-protocol' },
  'src/driver/driver.ts': { source: "import type { Udp } from '../transport/udp';\nexport type D = Udp;\n", breaks: 'driver-over-elector' },
  'src/driver/view.ts': { source: "import { socket } from '../core/election';\nexport const v = socket;\n", breaks: 'driver-over-elector' },
  'src/coordinator/lease.ts': {
    source: "import { socket } from '../core/election';\nexport const c = socket;\n",
    breaks: 'coordinator-over-elector',
  },
  'src/coordinator/session.ts': {
    source: "import { randomBytes } from 'node:crypto';\nexport const id = randomBytes(8);\n",
    breaks: 'machines-without-runtime-builtins',
  },
  'src/coordinator/table.ts': {
    source: "import { compareRank } from '../elector/rank';\nexport const rank = compareRank;\n",
    breaks: null,
  },
  'src/etcd/etcd.ts': {
    source:
      "import { rank } from '../coordinator/table';\nimport { readFileSync } from 'node:fs';\nexport const e = [rank, readFileSync];\n",
    breaks: null,
  },
  'src/coordinator/adapter.ts': { source: "import { e } from '../etcd/etcd';\nexport const a = e;\n", breaks: 'nothing-imports-the-top' },
  'src/util/describe.ts': { source: "import { later } from '../core/clock';\nexport const d = later;\n", breaks: 'util-is-the-bottom' },
  'src/shell/status.ts': {
    source: "import { fakeServer } from '../../sim/cluster';\nexport const s = fakeServer;\n",
    breaks: 'src-never-imports-dev-code',
  },
  'sim/cluster.ts': {
    source: "import { loopback } from '../tools/loopback';\nexport const fakeServer = loopback;\n",
    breaks: 'sim-never-imports-tools-or-tests',
  },
  'tools/loopback.ts': { source: "export const loopback = '127.0.0.1';\n", breaks: null },
};

function cruise(cwd: string): Promise<{ code: number; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      DEPCRUISE,
      ['src', 'sim', 'tools', '--config', path.join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err'],
      { cwd, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr, ms: Date.now() - started });
      },
    );
  });
}

test('an upward import, a cycle, a runtime built-in in either election machine, one machine reaching into the other and a reach into dev code each fail the check, by name', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'psm-layers-'));
  try {
    for (const [file, { source }] of Object.entries(TREE)) {
      mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
      writeFileSync(path.join(dir, file), source);
    }
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'commonjs', strict: true }, include: ['src', 'sim', 'tools'] }),
    );
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'layers-fixture', version: '1.0.0' }));
    const { code, output } = await cruise(dir);
    assert.notEqual(code, 0, output);
    // One entry per violation: "error <rule>: <from> → <to>" (a cycle lists every module in it).
    const entries = output.split(/\n\s*(?=error )/).filter((entry) => entry.startsWith('error '));
    const rulesOf = (file: string): string[] =>
      entries
        .filter((entry) => (entry.startsWith('error no-circular:') ? entry.includes(file) : entry.split(' ')[2] === file))
        .map((entry) => (entry.split(' ')[1] as string).replace(/:$/, ''));
    for (const [file, { breaks }] of Object.entries(TREE)) {
      const rules = rulesOf(file);
      if (breaks === null) assert.deepEqual(rules, [], `${file} breaks no rule, yet: ${output}`);
      else assert.ok(rules.includes(breaks), `${file} should fail ${breaks}; reported: ${rules.join(', ') || 'nothing'}\n${output}`);
    }
    assert.match(output, /x \d+ dependency violations \(\d+ errors, 0 warnings\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * What an import rule cannot see: globals. A timer, a clock read, `process` or a random number
 * in an election machine would make the simulator's runs depend on the machine they run on.
 */
const IMPURE =
  /\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|queueMicrotask)\s*\(|\bDate\.now\s*\(|\bnew Date\b|\bperformance\.|\bprocess\.|\bMath\.random\s*\(|\brequire\s*\(|\bglobalThis\b/;

/** Lines of `source` (comments left out) that use a global no election machine may use. */
function impureLines(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return code
    .split('\n')
    .filter((line) => IMPURE.test(line))
    .map((line) => line.trim());
}

test('neither election machine nor their contract reads a clock, sets a timer, touches process or draws a random number', () => {
  const planted = [
    'const at = Date.now();',
    'setTimeout(() => undefined, 10);',
    'if (process.env.X) x();',
    'const r = Math.random();',
    'const t = performance.now(); // why',
  ];
  for (const line of planted) assert.deepEqual(impureLines(line), [line.replace(/ \/\/.*$/, '')], `the scan must catch: ${line}`);
  assert.deepEqual(impureLines("/** the last process.exit */\nconst note = 'done'; // performance.now() is not here\n"), []);
  const found: string[] = [];
  for (const folder of ['src/core', 'src/coordinator', 'src/elector']) {
    for (const file of readdirSync(path.join(ROOT, folder)).filter((name) => name.endsWith('.ts'))) {
      for (const line of impureLines(readFileSync(path.join(ROOT, folder, file), 'utf8'))) found.push(`${folder}/${file}: ${line}`);
    }
  }
  assert.deepEqual(found, []);
});
