/**
 * `npm run check:pack`: install the package as a user would and use it, twice.
 *
 * 1. The lean install: the packed tarball and pixl-server in a new project in a temp
 *    directory, as `npm install pixl-server pixl-server-multi` would. It counts what npm put
 *    there (packages, megabytes, install scripts: none allowed, and at most LEAN_MAX_PACKAGES
 *    packages), starts one server on loopback until it is master, checks that configuring the
 *    etcd mode or metrics without their packages fails startup with the command that installs
 *    them, type-checks a strict TypeScript user against the shipped declarations, and runs the
 *    CLI through `npx`.
 * 2. The optional peers added (`npm install etcd3 prom-client`, into the same project): counted
 *    the same way; a server's metrics registry serves its metrics, and, where etcd is installed
 *    (Debian: etcd-server), a server in the etcd mode becomes master through one member started
 *    on 127.0.0.1.
 *
 * It needs the npm registry (pixl-server and our dependencies come from there), which is why
 * it is a script and not part of `npm test`.
 *
 *   npm run check:pack [-- --keep]    --keep: leave the temp directory for a look
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { assertLoopbackConfig, freeUdpPort } from './loopback';
import { EtcdCluster, ETCD_BINARY, ETCD_PACKAGE } from './etcd-cluster';

const ROOT = path.join(__dirname, '..', '..');
const MASTER_DEADLINE_MS = 20_000;
/** What issue 22 allows a default install (the library, pixl-server and what both need). */
const LEAN_MAX_PACKAGES = 31;
/** The packages of the optional features: never in a default install. */
const OPTIONAL_PEERS = ['etcd3', 'prom-client'];

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

async function stepAsync<T>(what: string, action: () => Promise<T>): Promise<T> {
  const started = performance.now();
  process.stdout.write(`${what} ... `);
  const result = await action();
  console.log(`${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/**
 * The user's script: one server of a cluster of one, on loopback. Modes: `master` (until it
 * is master), `metrics` (until master, then its registry's metrics must show it), `refused`
 * (startup must fail; prints the error lines the logger wrote).
 */
const STARTER = `'use strict';
const PixlServer = require('pixl-server');
const MultiServer = require('pixl-server-multi');
const [mode, sectionJson, logDir] = process.argv.slice(2);
const server = new PixlServer({
  __name: 'PackCheck',
  __version: '1.0',
  config: { hostname: 'pack-check', ip: '127.0.0.1', foreground: true, echo: false, log_dir: logDir, debug_level: 5, MultiServer: JSON.parse(sectionJson) },
  components: [MultiServer],
});
const deadline = setTimeout(() => { console.error('not master within ${MASTER_DEADLINE_MS} ms'); process.exit(1); }, ${MASTER_DEADLINE_MS});
server.once('prestart', () => server.logger.on('row', (line, cols, args) => { if (args.category === 'error') console.log('ERROR ' + args.msg); }));
server.on('master', async (term) => {
  if (mode === 'refused') { console.error('started, yet startup should have failed'); process.exit(1); }
  const multi = server.MultiServer;
  const self = multi.servers[multi.hostname];
  if (!multi.master || !self || !self.master) { console.error('a master event, but the component does not say so'); process.exit(1); }
  console.log('master, term ' + term + ', masterHostname ' + multi.masterHostname);
  if (mode === 'metrics') {
    const text = await multi.metricsRegistry().metrics();
    const line = text.split('\\n').find((l) => l.startsWith('pixl_multi_is_master '));
    if (line !== 'pixl_multi_is_master 1') { console.error('metrics without pixl_multi_is_master 1:\\n' + text); process.exit(1); }
    console.log(line);
  }
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

interface InstallFigures {
  packages: number;
  megabytes: number;
  /** Packages with an install script (npm runs them, or asks to). */
  scripts: string[];
  names: Set<string>;
}

/** What npm installed in `app`: every package of the tree, its size on disk and its install scripts. */
function measure(app: string): InstallFigures {
  const dirs = run('npm', ['ls', '--all', '--parseable'], app)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && path.resolve(line) !== path.resolve(app));
  const names = new Set<string>();
  const scripts: string[] = [];
  for (const dir of dirs) {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; scripts?: Record<string, string> };
    names.add(manifest.name);
    const hooks = ['preinstall', 'install', 'postinstall'].filter((hook) => manifest.scripts?.[hook]);
    if (hooks.length > 0 || existsSync(path.join(dir, 'binding.gyp')))
      scripts.push(`${manifest.name} (${hooks.join(', ') || 'binding.gyp'})`);
  }
  const kilobytes = Number(run('du', ['-sk', 'node_modules'], app).split(/\s+/)[0]);
  return { packages: dirs.length, megabytes: kilobytes / 1024, scripts, names };
}

function describe(figures: InstallFigures): string {
  return `${figures.packages} packages, ${figures.megabytes.toFixed(1)} MB, ${figures.scripts.length ? `install scripts: ${figures.scripts.join(', ')}` : 'no install scripts'}`;
}

async function loopbackSection(extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const section = { comm_port: await freeUdpPort(), broadcast_ip: '127.255.255.255', heartbeat_freq: 0.1, check_beats: 3, ...extra };
  assertLoopbackConfig(section);
  return section;
}

/** Run the starter; for `refused`, the error lines it logged (startup must have failed). */
function start(app: string, logs: string, mode: 'master' | 'metrics' | 'refused', section: Record<string, unknown>): string {
  const args = ['start.js', mode, JSON.stringify(section), logs];
  if (mode !== 'refused') return run(process.execPath, args, app, MASTER_DEADLINE_MS + 10_000).trim();
  // pixl-server exits with 1 when a component fails startup: what counts is what it said.
  const result = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', timeout: MASTER_DEADLINE_MS + 10_000 });
  if (result.error) throw result.error;
  return `${result.stdout}${result.stderr}`.trim();
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    peerDependencies: Record<string, string>;
  };
  const work = mkdtempSync(path.join(tmpdir(), 'psm-pack-'));
  let etcd: EtcdCluster | null = null;
  try {
    const packed = step(
      'npm pack (clean build)',
      () =>
        JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], ROOT)) as Array<{
          filename: string;
          size: number;
          unpackedSize: number;
          entryCount: number;
        }>,
    );
    const tarball = packed[0];
    if (!tarball) throw new Error('npm pack reported no tarball');
    console.log(`  ${tarball.filename}: ${tarball.entryCount} files, ${tarball.size} bytes packed, ${tarball.unpackedSize} unpacked`);

    const app = path.join(work, 'app');
    const logs = path.join(work, 'logs');
    mkdirSync(app);
    mkdirSync(logs);
    run('npm', ['init', '-y'], app);
    step('lean install: npm install pixl-server + the tarball', () =>
      run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', 'pixl-server', path.join(work, tarball.filename)], app),
    );
    const lean = measure(app);
    console.log(`  ${describe(lean)}`);
    const unasked = OPTIONAL_PEERS.filter((name) => lean.names.has(name));
    if (unasked.length > 0)
      throw new Error(`the default install holds ${unasked.join(' and ')}: optional peers must not be installed unasked`);
    if (lean.scripts.length > 0) throw new Error(`the default install runs install scripts: ${lean.scripts.join(', ')}`);
    if (lean.packages > LEAN_MAX_PACKAGES)
      throw new Error(
        `the default install has ${lean.packages} packages, more than ${LEAN_MAX_PACKAGES}: ${[...lean.names].sort().join(', ')}`,
      );

    writeFileSync(path.join(app, 'start.js'), STARTER);
    const started = await stepAsync('start one server on loopback until master', async () =>
      start(app, logs, 'master', await loopbackSection()),
    );
    console.log(`  ${started}`);

    const refusals: Array<{ what: string; extra: Record<string, unknown>; expected: string }> = [
      {
        what: 'the etcd mode',
        extra: { coordinator: { type: 'etcd', hosts: ['http://127.0.0.1:2379'] }, bind_ip: '127.0.0.1' },
        expected: 'run `npm install etcd3`',
      },
      { what: 'metrics', extra: { http_metrics_uri: '/metrics' }, expected: 'run `npm install prom-client`' },
    ];
    for (const { what, extra, expected } of refusals) {
      const said = await stepAsync(`without its package, configuring ${what} fails startup naming the install`, async () =>
        start(app, logs, 'refused', await loopbackSection(extra)),
      );
      const line = said.split('\n').find((l) => l.includes(expected));
      if (!line) throw new Error(`configuring ${what} without its package: expected an error naming "${expected}", got:\n${said}`);
      console.log(`  ${line}`);
    }

    writeFileSync(path.join(app, 'user.ts'), TYPED_USER);
    step('type-check a strict TypeScript user against the shipped .d.ts', () =>
      run(
        process.execPath,
        [
          require.resolve('typescript/bin/tsc'),
          '--noEmit',
          '--strict',
          '--target',
          'ES2022',
          '--module',
          'commonjs',
          '--moduleResolution',
          'node10',
          '--esModuleInterop',
          '--typeRoots',
          path.join(ROOT, 'node_modules', '@types'),
          '--types',
          'node',
          'user.ts',
        ],
        app,
      ),
    );

    const version = step('npx pixl-server-multi --version', () =>
      run('npx', ['--no-install', 'pixl-server-multi', '--version'], app).trim(),
    );
    if (version !== pkg.version)
      throw new Error(`npx pixl-server-multi --version printed ${JSON.stringify(version)}, expected ${pkg.version}`);
    console.log(`  ${version}`);

    // The optional peers, as the README tells a user to add them (within our peer ranges).
    const peers = OPTIONAL_PEERS.map((name) => `${name}@${pkg.peerDependencies[name] ?? 'latest'}`);
    step(`with the optional peers: npm install ${peers.join(' ')}`, () =>
      run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...peers], app),
    );
    const full = measure(app);
    console.log(`  ${describe(full)}`);
    const missing = OPTIONAL_PEERS.filter((name) => !full.names.has(name));
    if (missing.length > 0) throw new Error(`npm did not install ${missing.join(', ')}`);

    const metrics = await stepAsync('metrics: a server until master, its registry shows it', async () =>
      start(app, logs, 'metrics', await loopbackSection()),
    );
    console.log(`  ${metrics.split('\n').join('; ')}`);

    if (existsSync(ETCD_BINARY)) {
      etcd = await stepAsync('etcd: one member on 127.0.0.1', () => EtcdCluster.start({ members: 1 }));
      const hosts = etcd.endpoints;
      const inEtcd = await stepAsync('etcd mode: a server until master', async () =>
        start(
          app,
          logs,
          'master',
          // The member's own election timeout (fast, on loopback) lets a 2 s TTL pass the timing rule.
          await loopbackSection({
            coordinator: { type: 'etcd', hosts, ttl: 2, election_timeout_ms: etcd?.electionMs },
            bind_ip: '127.0.0.1',
          }),
        ),
      );
      console.log(`  ${inEtcd}`);
    } else {
      console.log(`etcd mode: not run, ${ETCD_BINARY} is missing (Debian: apt-get install ${ETCD_PACKAGE})`);
    }
    console.log(
      `check:pack passed: ${pkg.name}@${pkg.version} installs from its tarball and works; lean: ${lean.packages} packages, ${lean.megabytes.toFixed(1)} MB; with ${OPTIONAL_PEERS.join(' and ')}: ${full.packages} packages, ${full.megabytes.toFixed(1)} MB`,
    );
  } finally {
    await etcd?.close();
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
