/**
 * Real Redis and PostgreSQL servers for the fencing recipes' tests: Debian's `redis-server`
 * and `postgresql`, each started on a free 127.0.0.1 port in a temporary directory that is
 * removed after (also when the test process exits early). Nothing listens beyond loopback.
 * PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user the
 * Debian package creates, and initdb and postgres are spawned with its uid and gid.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freeTcpPort } from './etcd-cluster';
import { assertLoopback } from './loopback';

export const REDIS_BINARY = '/usr/bin/redis-server';
export const REDIS_PACKAGE = 'redis-server';
export const POSTGRES_PACKAGE = 'postgresql';
const HOST = '127.0.0.1';

/** Why the Redis tests cannot run here (null: they can). */
export function redisUnavailable(): string | null {
  if (!existsSync(REDIS_BINARY)) return `${REDIS_BINARY} not found (Debian: apt-get install -y ${REDIS_PACKAGE})`;
  return null;
}

/** The newest PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/<major>/bin), or null. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  let majors: string[] = [];
  try {
    majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    return null;
  }
  for (const major of majors) {
    const bin = path.join(root, major, 'bin');
    if (existsSync(path.join(bin, 'postgres')) && existsSync(path.join(bin, 'initdb'))) return bin;
  }
  return null;
}

function idOf(name: string): { uid: number; gid: number } | null {
  // os.userInfo() reads only the current user; `id` reads the passwd database.
  try {
    const uid = execFileSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = execFileSync('id', ['-g', name], { encoding: 'utf8' });
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return null;
  }
}

/** Why the PostgreSQL tests cannot run here (null: they can). */
export function postgresUnavailable(): string | null {
  if (!postgresBinDir()) return `no PostgreSQL server under /usr/lib/postgresql/*/bin (Debian: apt-get install -y ${POSTGRES_PACKAGE})`;
  if (process.getuid?.() === 0 && !idOf('postgres'))
    return `running as root without a "postgres" user to run the server as (Debian's ${POSTGRES_PACKAGE} package creates it)`;
  return null;
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

function run(file: string, args: string[], ids: { uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', ...ids }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, child: ChildProcess, log: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited during startup: ${log.join('').slice(-2000)}`);
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not answer within ${timeoutMs} ms: ${log.join('').slice(-2000)}`);
}

function tail(child: ChildProcess): string[] {
  const log: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      log.push(chunk);
      if (log.length > 50) log.shift();
    });
  }
  return log;
}

function stop(child: ChildProcess): Promise<void> {
  running.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** One redis-server on 127.0.0.1, no persistence, in a temp dir. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #child: ChildProcess;

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
  }

  static async start(): Promise<RedisServer> {
    const reason = redisUnavailable();
    if (reason) throw new Error(reason);
    hookExit();
    const port = await freeTcpPort();
    assertLoopback(HOST, 'redis bind address');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-redis-'));
    dirs.add(dir);
    const child = spawn(
      REDIS_BINARY,
      [
        '--bind',
        HOST,
        '--port',
        String(port),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    const log = tail(child);
    const server = new RedisServer(port, dir, child);
    const ping = async (): Promise<boolean> => {
      const { default: Redis } = await import('ioredis');
      const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    };
    try {
      await waitFor('redis-server', ping, 20_000, child, log);
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  async close(): Promise<void> {
    await stop(this.#child);
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

/** One PostgreSQL cluster (initdb, trust auth on 127.0.0.1 only), in a temp dir. */
export class PostgresServer {
  readonly port: number;
  readonly dir: string;
  /** The superuser to connect as. */
  readonly user: string;
  readonly #child: ChildProcess;

  private constructor(port: number, dir: string, user: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.user = user;
    this.#child = child;
  }

  static async start(): Promise<PostgresServer> {
    const reason = postgresUnavailable();
    if (reason) throw new Error(reason);
    hookExit();
    const bin = postgresBinDir() as string;
    const asRoot = process.getuid?.() === 0;
    const owner = asRoot ? idOf('postgres') : null;
    const user = asRoot ? 'postgres' : os.userInfo().username;
    const ids: SpawnOptions = owner ? { uid: owner.uid, gid: owner.gid } : {};
    const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-postgres-'));
    dirs.add(dir);
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const data = path.join(dir, 'data');
    try {
      await run(path.join(bin, 'initdb'), ['-D', data, '-U', user, '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale', 'C'], owner ?? {});
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
      throw err;
    }
    const port = await freeTcpPort();
    assertLoopback(HOST, 'postgres listen address');
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'synchronous_commit=off',
    ];
    const child = spawn(path.join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...ids });
    running.add(child);
    const log = tail(child);
    const server = new PostgresServer(port, dir, user, child);
    const probe = async (): Promise<boolean> => {
      const client = server.client();
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    try {
      await waitFor('postgres', probe, 30_000, child, log);
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** A new client (not connected) for the `postgres` database. */
  client(): import('pg').Client {
    const { Client } = require('pg') as typeof import('pg');
    return new Client({ host: HOST, port: this.port, user: this.user, database: 'postgres', connectionTimeoutMillis: 5000 });
  }

  async close(): Promise<void> {
    // SIGTERM is postgres's smart shutdown: the tests have closed their clients by then.
    await stop(this.#child);
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}
