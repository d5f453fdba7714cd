/**
 * `pixl-server-multi etcd-status`: an etcd-mode cluster as etcd holds it, read once (one
 * range of the prefix): the members and their records, who holds the election key with
 * which term, the last term granted, the checkpoint. It writes nothing and joins nothing.
 * Values go through the same decoding as the servers' (coordinator/records.ts).
 */
import type { KeyValue } from '../protocol/store';
import * as records from '../coordinator/records';
import { loadEtcd3 } from '../etcd/etcd';
import type { JsonObject, JsonValue } from '../protocol/messages';
import { renderTextTable } from '../util/text-table';
import { healthOf, type ServerHealth } from '../elector/types';
import { healthText } from './view';

export interface EtcdMemberView {
  hostname: string;
  ip: string;
  /** UDP port it takes messages on (0: none). */
  port: number;
  eligible: boolean;
  priority: number;
  /** The highest term it reports knowing. */
  term: number;
  uptime: number;
  master: boolean;
  lease: string;
  data: JsonObject;
  /** Its health check's state (null: none); the store keeps no counts or reason (docs/ETCD.md). */
  health: ServerHealth | null;
}

export interface EtcdSnapshot {
  prefix: string;
  /** etcd's revision at the read. */
  revision: number;
  /** Hostname of the master ('' when the election key is absent or unreadable). */
  masterHostname: string;
  /** The master's term (0: no master). */
  term: number;
  /** The highest term ever granted (`last-term`), 0 when absent. */
  lastTerm: number;
  checkpoint: { term: number; version: number; data: JsonValue } | null;
  members: EtcdMemberView[];
  /** Keys under the prefix that are not valid records (a writer other than the servers). */
  invalid: string[];
}

/** Decode everything under `prefix`, as read at `revision`. */
export function describeStore(
  prefix: string,
  kvs: KeyValue[],
  revision: number,
  limits: records.Limits = { maxBytes: 65536, maxDataBytes: 0 },
): EtcdSnapshot {
  const keys = records.keysFor(prefix);
  const snapshot: EtcdSnapshot = { prefix, revision, masterHostname: '', term: 0, lastTerm: 0, checkpoint: null, members: [], invalid: [] };
  for (const kv of kvs) {
    if (kv.key === keys.master) {
      const master = records.decodeMaster(kv.value, limits);
      if (!master) snapshot.invalid.push(kv.key);
      snapshot.masterHostname = master?.hostname ?? '';
      snapshot.term = master?.term || kv.createRevision;
    } else if (kv.key === keys.lastTerm) {
      snapshot.lastTerm = records.decodeTerm(kv.value) ?? 0;
    } else if (kv.key === keys.checkpoint) {
      const checkpoint = records.decodeCheckpoint(kv.value, limits);
      if (checkpoint) snapshot.checkpoint = { term: checkpoint.t, version: checkpoint.v, data: checkpoint.d };
      else snapshot.invalid.push(kv.key);
    } else if (kv.key.startsWith(keys.members)) {
      const hostname = kv.key.slice(keys.members.length);
      const member = records.decodeMember(kv.value, hostname, limits);
      if (!member) {
        snapshot.invalid.push(kv.key);
        continue;
      }
      const hb = member.heartbeat;
      snapshot.members.push({
        hostname,
        ip: hb.ip,
        port: member.port,
        eligible: hb.eligible,
        priority: hb.prio ?? 0,
        term: hb.term ?? 0,
        uptime: hb.uptime,
        master: false,
        lease: kv.lease,
        data: hb.data,
        health: healthOf(hb.health),
      });
    }
  }
  for (const member of snapshot.members) member.master = member.hostname === snapshot.masterHostname;
  snapshot.members.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return snapshot;
}

export interface ReadOptions {
  hosts: string[];
  prefix: string;
  username?: string;
  password?: string;
  timeoutMs: number;
}

/** Read the prefix from etcd once (etcd3 loaded lazily: it is an optional dependency). */
export async function readStore(options: ReadOptions): Promise<EtcdSnapshot> {
  const { Etcd3 } = loadEtcd3() as unknown as { Etcd3: new (o: Record<string, unknown>) => import('etcd3').Etcd3 };
  const config: Record<string, unknown> = { hosts: options.hosts, dialTimeout: options.timeoutMs };
  if (options.username !== undefined) config.auth = { username: options.username, password: options.password ?? '' };
  const client = new Etcd3(config);
  try {
    const end = Buffer.from(options.prefix);
    end[end.length - 1] = (end[end.length - 1] as number) + 1; // every prefix ends with "/"; "0" follows it
    const res = await client.kv.range(
      { key: Buffer.from(options.prefix), range_end: end, limit: 100_000 },
      { deadline: Date.now() + options.timeoutMs },
    );
    const kvs: KeyValue[] = res.kvs.map((raw) => ({
      key: raw.key.toString('utf8'),
      value: raw.value.toString('utf8'),
      createRevision: Number(raw.create_revision),
      modRevision: Number(raw.mod_revision),
      lease: String(raw.lease ?? '0'),
    }));
    return describeStore(options.prefix, kvs, Number(res.header.revision));
  } finally {
    client.close();
  }
}

/** Control characters out of what reaches a terminal (values come from the store). */
function safe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function renderStore(snapshot: EtcdSnapshot): string {
  const rows: string[][] = [];
  for (const m of snapshot.members) {
    let data = safe(JSON.stringify(m.data) ?? '');
    if (data.length > 40) data = `${data.slice(0, 37)}...`;
    rows.push([
      safe(m.hostname),
      m.port ? `${safe(m.ip)}:${m.port}` : safe(m.ip),
      m.master ? 'master' : 'slave',
      m.eligible ? 'yes' : 'no',
      healthText(m.health),
      String(m.priority),
      String(m.term),
      `${m.uptime} s`,
      data,
    ]);
  }
  const master = snapshot.masterHostname ? `master: ${safe(snapshot.masterHostname)} (term ${snapshot.term})` : 'no master';
  const lines = [
    `${snapshot.members.length} server${snapshot.members.length === 1 ? '' : 's'} under ${safe(snapshot.prefix)} at etcd revision ${snapshot.revision}, ${master}; last term granted ${snapshot.lastTerm || 'none'}`,
    renderTextTable(['hostname', 'address', 'role', 'eligible', 'health', 'priority', 'term', 'uptime', 'data'], rows),
  ];
  if (snapshot.checkpoint) lines.push(`checkpoint: term ${snapshot.checkpoint.term}, version ${snapshot.checkpoint.version}`);
  if (snapshot.invalid.length > 0) lines.push(`not valid records (not written by a server): ${snapshot.invalid.map(safe).join(', ')}`);
  return lines.join('\n');
}

interface EtcdStatusOptions {
  hosts: string[];
  prefix?: string;
  clusterId: string;
  username?: string;
  passwordEnv?: string;
  timeout: number;
  json?: boolean;
}

/** The `etcd-status` command, added to the CLI's program (cli.ts). Sets the exit code through `done`. */
export function registerEtcdStatus(
  program: import('commander').Command,
  done: (code: number) => void,
  helpers: { collect: (value: string, previous: string[]) => string[] },
): void {
  const command = program
    .command('etcd-status')
    .description('an etcd-mode cluster as etcd holds it: members, master and term (reads the prefix once; writes nothing)')
    .requiredOption('-e, --etcd <url>', 'an etcd client URL, "http://host:2379" (repeat for each member)', helpers.collect, [] as string[])
    .option('--prefix <prefix>', "the cluster's coordinator.prefix (default: /pixl-server-multi/<cluster id>/)")
    .option('-c, --cluster-id <id>', 'cluster_id of the cluster, for the default prefix', '')
    .option('-u, --username <name>', 'etcd user (coordinator.username)')
    .option('--password-env <name>', 'the environment variable that holds the password (never on the command line)')
    .option('-t, --timeout <ms>', 'how long to wait for etcd', (value: string) => Number(value), 5000)
    .option('-j, --json', 'print JSON for scripts')
    .action(async (options: Omit<EtcdStatusOptions, 'hosts'> & { etcd: string[] }) => {
      const usage = (message: string): never => command.error(message, { exitCode: 2, code: 'pixl-server-multi.usage' });
      for (const url of options.etcd) {
        let parsed: URL | null = null;
        try {
          parsed = new URL(url);
        } catch {
          parsed = null;
        }
        if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username || parsed.password)
          usage(
            `error: --etcd must be an etcd client URL such as http://10.0.0.1:2379 (no credentials), got ${url.includes('@') ? 'a URL with credentials (not shown)' : JSON.stringify(url)}`,
          );
      }
      if (!Number.isFinite(options.timeout) || options.timeout < 1) usage('error: --timeout must be a positive number of milliseconds');
      const prefix = options.prefix ?? `/pixl-server-multi/${options.clusterId || 'default'}/`;
      if (!/^[\x21-\x7e]{1,255}\/$/.test(prefix))
        usage(`error: --prefix must be printable characters ending with "/", got ${JSON.stringify(prefix)}`);
      const password = options.passwordEnv !== undefined ? process.env[options.passwordEnv] : undefined;
      try {
        const snapshot = await readStore({
          hosts: options.etcd,
          prefix,
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(password !== undefined ? { password } : {}),
          timeoutMs: options.timeout,
        });
        process.stdout.write(options.json ? `${JSON.stringify(snapshot)}\n` : `${renderStore(snapshot)}\n`);
        done(snapshot.members.length > 0 ? 0 : 1);
      } catch (err) {
        process.stderr.write(
          `error: cannot read ${prefix} from etcd at ${options.etcd.join(', ')}: ${(err as Error).message.slice(0, 300)}\n`,
        );
        done(1);
      }
    });
}
