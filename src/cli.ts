#!/usr/bin/env node
/**
 * `npx pixl-server-multi status`: look at a running cluster from any host on its network.
 * It binds the cluster's port as an observer (address reuse, so it can run beside a
 * server on the same host), asks who is there with a `hello` every second (servers answer
 * with their heartbeat at once; a hello never puts anyone in a server table), and lists what
 * it hears. It never sends a heartbeat, so it is never counted as a server.
 *
 * With --json it prints the status document, the schema a server's status route serves
 * (shell/status.ts), as an observer writes it.
 *
 * Exit codes: 0 servers listed, 1 nothing heard or a run-time error (the port cannot be
 * bound, a hello cannot be sent), 2 bad arguments.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { computeBroadcastIP, DEFAULT_CONFIG } from './config';
import { renderTextTable } from './util/text-table';
import { createKeyring } from './wire/auth';
import { CLUSTER_ID_PATTERN } from './protocol/limits';
import { ipFamily, isMulticast } from './protocol/address';
import type { StatusDocument } from './shell/status';
import { LEFT_SHOWN_MS, Observer } from './shell/observer';
import { healthText } from './shell/view';
import { registerRunCommand } from './run/command';
import { registerEtcdStatus } from './shell/etcd-status';

export const EXIT_OK = 0;
export const EXIT_NOTHING_HEARD = 1;
export const EXIT_USAGE = 2;

/** What --json prints: the status document (one schema with the HTTP status route). */
export type Snapshot = StatusDocument;
export { LEFT_SHOWN_MS, Observer };

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function terminalSafe(text: string): string {
  return text.replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function renderTable(doc: StatusDocument, options: { color?: boolean } = {}): string {
  const dim = (text: string): string => (options.color ? `\x1b[2m${text}\x1b[22m` : text);
  const shown = (data: unknown): string => {
    const text = terminalSafe(JSON.stringify(data) ?? '');
    return text.length > 40 ? text.slice(0, 37) + '...' : text;
  };
  // One line per server, no rule between rows: compact enough for a --watch of many servers.
  const rows: string[][] = [];
  const styles: Array<((cell: string) => string) | undefined> = [];
  for (const s of doc.view) {
    rows.push([
      s.hostname,
      s.ip,
      s.state,
      s.eligible ? 'yes' : 'no',
      healthText(s.health),
      String(s.term),
      `${(s.lastHeardMs / 1000).toFixed(1)} s ago`,
      formatUptime(s.uptime),
      shown(doc.servers[s.hostname]?.data),
    ]);
    styles.push(undefined);
  }
  for (const d of doc.departed) {
    const why = d.reason === 'shutdown' ? 'left (shut down)' : 'left (silent)';
    rows.push([
      d.hostname,
      d.ip,
      why,
      '',
      '',
      '',
      `${(Math.max(0, doc.generatedAt - d.lastHeardAt) / 1000).toFixed(1)} s ago`,
      '',
      shown(d.data),
    ]);
    styles.push(dim);
  }
  const table = renderTextTable(['hostname', 'address', 'state', 'eligible', 'health', 'term', 'last heard', 'uptime', 'data'], rows, {
    style: styles,
  });
  const observer = doc.observer;
  const left = doc.departed.length;
  const master = doc.view.find((s) => s.hostname === doc.masterHostname);
  const verdict =
    doc.conflict.length > 0
      ? `CONFLICT: ${doc.conflict.length} masters (${doc.conflict.join(', ')})`
      : master
        ? `master: ${master.hostname} (term ${master.term}${master.state === 'suspect' ? ', suspect: not heard lately' : ''})`
        : 'no master';
  const dropped = Object.entries(observer?.dropped ?? {}).map(([reason, n]) => `${reason} ${n}`);
  // Why a failing server fails: too long for a column, and what the operator came for.
  const failing = doc.view
    .filter((s) => s.health?.state === 'failing' && s.state !== 'left')
    .map((s) => `${s.hostname}: not eligible: its health check fails${s.health?.error ? `: ${terminalSafe(s.health.error)}` : ''}`);
  return [
    `${plural(doc.view.length, 'server')}${left ? ` (${left} left)` : ''} on port ${observer?.port ?? '?'}, ${verdict}`,
    table,
    ...failing,
    `heard ${plural(observer?.heartbeats ?? 0, 'heartbeat')} in ${((observer?.listenedMs ?? 0) / 1000).toFixed(1)} s` +
      (dropped.length ? `; dropped: ${dropped.join(', ')}` : ''),
  ].join('\n');
}

function formatUptime(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** Longest --listen: setTimeout fires at once beyond 2^31 - 1 ms; a day is plenty. */
const MAX_LISTEN_S = 86_400;

function listenSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0.1 || n > MAX_LISTEN_S)
    throw new InvalidArgumentError(`--listen must be a number of seconds from 0.1 to ${MAX_LISTEN_S}, got "${value}"`);
  return n;
}

/** Arguments are what a user typed: an address must be a literal IP, never a name looked up. */
function ipv4Broadcast(value: string): string {
  if (ipFamily(value) !== 4 || isMulticast(value))
    throw new InvalidArgumentError(`--broadcast-ip must be an IPv4 address such as 192.168.1.255 or 127.255.255.255, got "${value}"`);
  return value;
}

function localAddress(value: string): string {
  if (ipFamily(value) === 0 || value.includes('%') || isMulticast(value) || value === '255.255.255.255') {
    throw new InvalidArgumentError(`--bind-ip must be an IP address of this host, such as 0.0.0.0, :: or 10.0.0.5, got "${value}"`);
  }
  return value;
}

function multicastGroup(value: string): string {
  if (!isMulticast(value) || value.includes('%'))
    throw new InvalidArgumentError(`--multicast-group must be a multicast address such as 239.255.30.14 or ff15::3014, got "${value}"`);
  return value;
}

function secret(value: string, previous: string[]): string[] {
  if (value === '') throw new InvalidArgumentError('--secret must not be empty');
  return [...previous, value];
}

function integerIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

function heartbeatSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.01 || n > 86400)
    throw new InvalidArgumentError(`--heartbeat-freq must be a number of seconds from 0.01 to 86400, got "${value}"`);
  return n;
}

function packageVersion(): string {
  try {
    // dist/src/cli.js and src/cli.ts both sit two levels below the package root.
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface StatusOptions {
  port: number;
  secret: string[];
  clusterId: string;
  broadcastIp?: string;
  multicastGroup?: string;
  bindIp?: string;
  listen: number;
  hello: boolean;
  heartbeatFreq: number;
  checkBeats: number;
  watch?: boolean;
  frames?: number;
  json?: boolean;
}

/** Redraws per second with --watch; each frame also sends a hello. */
const FRAME_MS = 1000;

async function status(options: StatusOptions, usageError: (message: string) => never): Promise<number> {
  if (options.clusterId && !CLUSTER_ID_PATTERN.test(options.clusterId)) {
    usageError(`error: --cluster-id must be 1 to 64 letters, digits, ".", "-" or "_", got "${options.clusterId}"`);
  }
  if (options.frames !== undefined && !options.watch) usageError('error: --frames needs --watch');
  if (options.broadcastIp !== undefined && options.multicastGroup !== undefined)
    usageError('error: --broadcast-ip and --multicast-group name two transports: give one');
  // One socket speaks one IP version: that of the group, else of --bind-ip.
  const family: 4 | 6 = ipFamily(options.multicastGroup ?? options.bindIp ?? '0.0.0.0') === 6 ? 6 : 4;
  if (options.bindIp !== undefined && ipFamily(options.bindIp) !== family) {
    usageError(
      `error: --bind-ip ${options.bindIp} is IPv${ipFamily(options.bindIp)}, --multicast-group ${options.multicastGroup} IPv${family}: give addresses of one version`,
    );
  }
  if (family === 6 && options.multicastGroup === undefined)
    usageError("error: broadcast is IPv4 only: with an IPv6 --bind-ip, give the cluster's --multicast-group");
  const observer = new Observer({
    port: options.port,
    broadcastIp: options.broadcastIp ?? computeBroadcastIP(os.networkInterfaces()),
    bindIp: options.bindIp ?? (family === 6 ? '::' : '0.0.0.0'),
    multicastGroup: options.multicastGroup ?? null,
    family,
    keyring: options.secret.length > 0 ? createKeyring(options.secret) : null,
    clusterId: options.clusterId,
    tickMs: options.heartbeatFreq * 1000,
    checkBeats: options.checkBeats,
  });
  try {
    await observer.open();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? ' (another program holds it without address reuse; for a cluster in etcd mode, use `pixl-server-multi etcd-status --etcd <url>`)'
        : code === 'EACCES'
          ? ' (ports below 1024 need root)'
          : '';
    process.stderr.write(`error: cannot listen on UDP port ${options.port}${why}: ${(err as Error).message}\n`);
    observer.close();
    return EXIT_NOTHING_HEARD;
  }
  // A hello the socket could not send is an error, said once per reason: the servers cannot
  // have been asked, and a listing without their answers may miss every one of them.
  const helloErrors = new Set<string>();
  observer.onHelloError = (err) => {
    if (helloErrors.has(err.message) || helloErrors.size >= 8) return;
    helloErrors.add(err.message);
    const to = options.multicastGroup ?? observer.broadcastIp;
    process.stderr.write(
      `error: cannot send the hello to ${to} port ${options.port}: ${err.message}${(err as NodeJS.ErrnoException).code === 'ENETUNREACH' ? ' (no route to that address from this host: check --broadcast-ip)' : ''}\n`,
    );
  };
  const failed = (): number => (observer.hellosFailed > 0 ? EXIT_NOTHING_HEARD : EXIT_OK);
  const listed = (doc: StatusDocument): boolean => doc.view.length + doc.departed.length > 0;
  const color = !options.json && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const print = (snapshot: Snapshot): void => {
    process.stdout.write(options.json ? JSON.stringify(snapshot) + '\n' : renderTable(snapshot, { color }) + '\n');
  };
  const ask = (): void => {
    if (options.hello) observer.hello();
  };
  ask();

  if (options.watch) {
    let frames = 0;
    let heardAny = false;
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        clearInterval(timer);
        process.removeListener('SIGINT', stop);
        resolve();
      };
      const timer = setInterval(() => {
        const snapshot = observer.snapshot();
        heardAny ||= listed(snapshot);
        if (color) process.stdout.write('\x1b[2J\x1b[H');
        print(snapshot);
        // Every frame asks again: a server answers at once, so none goes quiet between its heartbeats.
        ask();
        if (options.frames !== undefined && ++frames >= options.frames) stop();
      }, FRAME_MS);
      process.once('SIGINT', stop);
    });
    observer.close();
    return heardAny ? failed() : EXIT_NOTHING_HEARD;
  }

  // A second hello halfway through (and every second of a long --listen) covers a lost one.
  const again = setInterval(ask, Math.min(FRAME_MS, (options.listen * 1000) / 2));
  await new Promise((resolve) => setTimeout(resolve, options.listen * 1000));
  clearInterval(again);
  const snapshot = observer.snapshot();
  observer.close();
  if (!listed(snapshot)) {
    const dropped = Object.entries(snapshot.observer?.dropped ?? {})
      .map(([r, n]) => `${r} ${n}`)
      .join(', ');
    process.stderr.write(
      `error: no heartbeat heard on UDP port ${options.port} in ${options.listen} s.` +
        (dropped
          ? ` Datagrams were dropped (${dropped}): check --secret and --cluster-id.`
          : observer.hellosFailed > 0
            ? ' No hello could be sent (above), so no server was asked.'
            : options.hello
              ? " Check --port, firewalls, and that this host is on the cluster's network; servers older than 2.0 ignore the hello: use a --listen longer than their heartbeat_freq."
              : ' With --no-hello, use a --listen longer than the heartbeat_freq.') +
        '\n',
    );
    // Scripts reading --json always get a document.
    if (options.json) print(snapshot);
    return EXIT_NOTHING_HEARD;
  }
  print(snapshot);
  return failed();
}

export function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command();
  program
    .name('pixl-server-multi')
    .description('Tools for pixl-server-multi clusters')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    // Exit codes are ours (2 for bad arguments); commander must not exit the process itself.
    .exitOverride();
  let exitCode = EXIT_OK;
  const statusCommand = program
    .command('status')
    .description('list the servers of a cluster as an observer (sends no heartbeat, never counts as a server)')
    .option('-p, --port <port>', "the cluster's comm_port", integerIn('--port', 1, 65535), DEFAULT_CONFIG.comm_port)
    .option('-s, --secret <key>', 'secret_key of the cluster (repeat for rotation)', secret, [] as string[])
    .option('-c, --cluster-id <id>', 'cluster_id of the cluster', '')
    .option('-b, --broadcast-ip <ip>', 'where to send the hello (default: computed like the component)', ipv4Broadcast)
    .option('-m, --multicast-group <group>', 'for clusters on the multicast transport: the group to join', multicastGroup)
    .option('--bind-ip <ip>', 'address to listen on (default: 0.0.0.0, or :: with an IPv6 group)', localAddress)
    .option('-l, --listen <seconds>', 'how long to listen before printing (0.1 to 86400)', listenSeconds, 2)
    .option('--no-hello', 'only listen; do not ask servers to answer at once (wait for their heartbeats)')
    .option(
      '--heartbeat-freq <seconds>',
      "the cluster's heartbeat_freq, for servers whose heartbeats do not carry it",
      heartbeatSeconds,
      DEFAULT_CONFIG.heartbeat_freq,
    )
    .option(
      '--check-beats <n>',
      "the cluster's check_beats, for servers whose heartbeats do not carry it",
      integerIn('--check-beats', 1, 1000),
      DEFAULT_CONFIG.check_beats,
    )
    .option('-w, --watch', 'redraw every second until interrupted')
    .option('--frames <n>', 'with --watch: stop after this many redraws', integerIn('--frames', 1, 1_000_000))
    .option('-j, --json', 'print JSON for scripts (one document per frame)')
    .addHelpText(
      'after',
      '\nStates: listening (has not named a master), slave, master, suspect (silent for more than a\n' +
        'tick and a half), left (shut down, or silent past its tock; listed for 5 minutes).\n' +
        'Health: the health check a server runs (setHealthCheck, run --health-cmd): starting, passing,\n' +
        '"failing 3/3" (failures in a row / fall: not eligible; why is printed below the table), or\n' +
        'empty (no check).\n' +
        '--json prints the status document, the schema of the HTTP status route (docs/OPERATIONS.md).\n' +
        'Exit codes: 0 servers listed, 1 nothing heard or a run-time error (a hello that could not be\n' +
        'sent), 2 bad arguments.',
    )
    .action(async (options: StatusOptions) => {
      exitCode = await status(options, (message) =>
        statusCommand.error(message, { exitCode: EXIT_USAGE, code: 'pixl-server-multi.usage' }),
      );
    });
  registerRunCommand(program, (code) => {
    exitCode = code;
  });
  // An etcd-mode cluster is read from etcd (its servers bind comm_port exclusively and send no heartbeats).
  registerEtcdStatus(program, (code) => (exitCode = code), { collect });
  return program.parseAsync(argv).then(
    () => exitCode,
    (err: Error) => {
      // commander has printed its own message (usage, help, version) before throwing.
      if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT_NOTHING_HEARD;
    },
  );
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
