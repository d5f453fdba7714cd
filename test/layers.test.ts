/**
 * The layering rules (.dependency-cruiser.cjs, run by `npm run lint:deps` before every
 * `npm test`) can fail: the real checker with the real config, on a small tree laid out as
 * ours, each file breaking one rule. A rule that stopped matching (a renamed folder, a typo
 * in a pattern) would pass the repository and fail here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const DEPCRUISE = path.join(ROOT, 'node_modules', '.bin', 'depcruise');

/** Each file of the tree, and the rule (with the import) it must be reported under; null: breaks none. */
const TREE: Record<string, { source: string; breaks: string | null }> = {
  'src/protocol/messages.ts': { source: "export interface Address { address: string; port: number }\n", breaks: null },
  'src/protocol/limits.ts': { source: "import { MAX_SEND } from './cycle';\nexport const MAX_UDP_PAYLOAD = MAX_SEND;\n", breaks: 'no-circular' },
  'src/protocol/cycle.ts': { source: "import { MAX_UDP_PAYLOAD } from './limits';\nexport const MAX_SEND = 1;\nexport const twice = (): number => MAX_UDP_PAYLOAD * 2;\n", breaks: 'no-circular' },
  'src/protocol/address.ts': { source: "import type { Settings } from '../config';\nexport type Family = Settings['family'];\n", breaks: 'protocol-is-the-bottom' },
  'src/config.ts': { source: "export interface Settings { family: 4 | 6 }\n", breaks: null },
  'src/transport/udp.ts': { source: "import type { Settings } from '../config';\nexport class Udp { settings: Settings | null = null }\n", breaks: 'transport-over-protocol' },
  'src/core/election.ts': { source: "import { Udp } from '../transport/udp';\nexport const socket = new Udp();\n", breaks: 'core-over-protocol' },
  'src/core/clock.ts': { source: "import { setTimeout as sleep } from 'node:timers/promises';\nexport const later = sleep;\n", breaks: 'core-without-runtime-builtins' },
  'src/core/types.ts': { source: "import type { Socket } from 'node:dgram';\nexport type Sock = Socket;\n", breaks: null },
  'src/wire/codec.ts': { source: "import { socket } from '../core/election';\nexport const s = socket;\n", breaks: 'wire-over-protocol' },
  'src/driver/driver.ts': { source: "import type { Udp } from '../transport/udp';\nexport type D = Udp;\n", breaks: 'driver-over-machines' },
  'src/coordinator/lease.ts': { source: "import { socket } from '../core/election';\nexport const c = socket;\n", breaks: 'coordinator-over-protocol' },
  'src/util/describe.ts': { source: "import { later } from '../core/clock';\nexport const d = later;\n", breaks: 'util-is-the-bottom' },
  'src/shell/status.ts': { source: "import { fakeServer } from '../../sim/cluster';\nexport const s = fakeServer;\n", breaks: 'src-never-imports-dev-code' },
  'sim/cluster.ts': { source: "import { loopback } from '../tools/loopback';\nexport const fakeServer = loopback;\n", breaks: 'sim-never-imports-tools-or-tests' },
  'tools/loopback.ts': { source: "export const loopback = '127.0.0.1';\n", breaks: null },
};

function cruise(cwd: string): Promise<{ code: number; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(DEPCRUISE, ['src', 'sim', 'tools', '--config', path.join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err'], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr, ms: Date.now() - started });
    });
  });
}

test('an upward import, a cycle, a runtime built-in in the core and a reach into dev code each fail the check, by name', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'psm-layers-'));
  try {
    for (const [file, { source }] of Object.entries(TREE)) {
      mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
      writeFileSync(path.join(dir, file), source);
    }
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'commonjs', strict: true }, include: ['src', 'sim', 'tools'] }));
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
