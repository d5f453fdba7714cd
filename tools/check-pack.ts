/**
 * `npm run check:pack`: install the package as a user would and use it. Packs the tarball
 * (prepack cleans dist/src, prepare rebuilds it), installs it with pixl-server into a new
 * project in a temp directory, starts one server there on loopback until it is master,
 * type-checks a TypeScript user of it against the shipped declarations, and runs the CLI
 * through `npx`. It needs the npm registry (pixl-server and our dependencies come from
 * there), which is why it is a script and not part of `npm test`.
 *
 *   npm run check:pack [-- --keep]    --keep: leave the temp directory for a look
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { assertLoopbackConfig, freeUdpPort } from './loopback';

const ROOT = path.join(__dirname, '..', '..');
const MASTER_DEADLINE_MS = 20_000;

function run(command: string, args: string[], cwd: string, timeoutMs = 300_000): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

function step<T>(what: string, action: () => T): T {
  const started = performance.now();
  process.stdout.write(`${what} ... `);
  const result = action();
  console.log(`${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** The user's script: one server of a cluster of one, on loopback, until it is master. */
const STARTER = `'use strict';
const PixlServer = require('pixl-server');
const MultiServer = require('pixl-server-multi');
const section = JSON.parse(process.argv[2]);
const server = new PixlServer({
  __name: 'PackCheck',
  __version: '1.0',
  config: { hostname: 'pack-check', ip: '127.0.0.1', foreground: true, echo: false, log_dir: process.argv[3], debug_level: 5, MultiServer: section },
  components: [MultiServer],
});
const deadline = setTimeout(() => { console.error('not master within ${MASTER_DEADLINE_MS} ms'); process.exit(1); }, ${MASTER_DEADLINE_MS});
server.on('master', (term) => {
  const multi = server.MultiServer;
  const self = multi.servers[multi.hostname];
  if (!multi.master || !self || !self.master) { console.error('a master event, but the component does not say so'); process.exit(1); }
  console.log('master, term ' + term + ', masterHostname ' + multi.masterHostname);
  clearTimeout(deadline);
  server.shutdown(() => process.exit(0));
});
server.startup(() => {});
`;

/** A TypeScript user: the shipped declarations must compile under strict. */
const TYPED_USER = `import MultiServer = require('pixl-server-multi');
export function masterOf(component: MultiServer): string {
  const record = component.servers[component.masterHostname];
  return record && record.master ? record.hostname : '';
}
`;

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const work = mkdtempSync(path.join(tmpdir(), 'psm-pack-'));
  try {
    const packed = step('npm pack (clean build)', () => JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], ROOT)) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>);
    const tarball = packed[0];
    if (!tarball) throw new Error('npm pack reported no tarball');
    console.log(`  ${tarball.filename}: ${tarball.entryCount} files, ${tarball.size} bytes packed, ${tarball.unpackedSize} unpacked`);

    const app = path.join(work, 'app');
    run('mkdir', ['-p', app], work);
    run('npm', ['init', '-y'], app);
    step('npm install pixl-server + the tarball', () => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', 'pixl-server', path.join(work, tarball.filename)], app));

    const section = { comm_port: await freeUdpPort(), broadcast_ip: '127.255.255.255', heartbeat_freq: 0.1, check_beats: 3 };
    assertLoopbackConfig(section);
    writeFileSync(path.join(app, 'start.js'), STARTER);
    const started = step('start one server on loopback until master', () => run(process.execPath, ['start.js', JSON.stringify(section), work], app, MASTER_DEADLINE_MS + 5000));
    console.log(`  ${started.trim()}`);

    writeFileSync(path.join(app, 'user.ts'), TYPED_USER);
    step('type-check a strict TypeScript user against the shipped .d.ts', () =>
      run(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '--strict', '--target', 'ES2022', '--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'user.ts'], app),
    );

    const version = step('npx pixl-server-multi --version', () => run('npx', ['--no-install', 'pixl-server-multi', '--version'], app).trim());
    if (version !== pkg.version) throw new Error(`npx pixl-server-multi --version printed ${JSON.stringify(version)}, expected ${pkg.version}`);
    console.log(`  ${version}`);
    console.log(`check:pack passed: ${pkg.name}@${pkg.version} installs from its tarball and works`);
  } finally {
    if (keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  const failure = err as { message?: string; stdout?: string; stderr?: string };
  console.error(`\ncheck:pack FAILED: ${failure.message ?? String(err)}`);
  if (failure.stdout) console.error(failure.stdout);
  if (failure.stderr) console.error(failure.stderr);
  process.exit(1);
});
