/**
 * The etcd adapter: carries out the lease election's store ops with the `etcd3` client
 * (an optional dependency, loaded only when a coordinator is configured) and hands back
 * their results and the watch's events. It decides nothing about the election.
 *
 * It does decide where each op goes. One client per member (each with its own connection),
 * not etcd3's own host shuffling with its retries and circuit breakers: an op goes to the
 * member that answered last, and one that fails to connect, times out, or has no leader is
 * retried at once on another (endpoints.ts avoids the failed member for a while). So a dead
 * member costs a refused connection, and a member that hangs costs the op's timeout once.
 *
 * Every op gets exactly one result: etcd's answer, or an error at the op's `timeoutMs`
 * (a late answer is dropped; the machine is written for ops that failed yet took effect).
 * An error says why (`kind`) and where (`endpoint`), for the operator's log line.
 *
 * Each keep-alive has a stream of its own (one request, one answer); the machine sends
 * another while one is slow, and it goes to a member that has none pending. A keep-alive
 * waits at a member without a leader until one is elected, and the new leader extends every
 * lease: that, and the next keep-alive sent once the leader is in, keep the lease through an
 * etcd leader election.
 *
 * The watch requires a leader (etcd's `hasleader` metadata, as clientv3's WithRequireLeader):
 * a member cut from its quorum ends the watch instead of going quiet, and the machine reads
 * again from another. A watch that disconnects, errs or is cancelled by etcd (compaction) is
 * reported lost at once and not resumed: the machine reads everything again.
 *
 * Credentials refused: every op fails at once for a while without asking etcd (each try is
 * a bcrypt check on every member), from 1 s doubling to 30 s, until one succeeds.
 */
import { readFileSync } from 'node:fs';
import type { EtcdSettings } from './settings';
import type { StoreOp, StoreResult, WatchBatch } from '../protocol/store';
import { Endpoints } from './endpoints';
import {
  classifyError,
  INSTALL_COMMAND,
  loadEtcd3,
  loadGrpc,
  NO_BACKOFF,
  ONCE,
  prefixEnd,
  requireLeaderInterceptor,
  revision,
  toKeyValue,
  type DuplexStream,
  type EtcdClient,
  type EtcdModule,
  type WatchResponse,
} from './client';

export { classifyError, INSTALL_COMMAND, loadEtcd3 };

export type { EtcdSettings } from './settings';

/** Credentials refused: no op is sent for this long, doubling up to AUTH_BACKOFF_MAX_MS. */
export const AUTH_BACKOFF_MS = 1000;
export const AUTH_BACKOFF_MAX_MS = 30_000;

export interface StoreHandlers {
  result(id: number, result: StoreResult): void;
  watch(id: number, batch: WatchBatch): void;
  watchLost(id: number, reason: string): void;
}

interface Member {
  url: string;
  client: EtcdClient;
  /** Keep-alives waiting for its answer. */
  keepAlives: number;
}

export interface EtcdStoreOptions {
  /** The clock for avoiding members and backing off (ms). */
  now?: () => number;
  random?: () => number;
  /** Diagnostics: each op as it goes to a member, and each result (tests, the lab). */
  trace?: (line: string) => void;
}

export class EtcdStore {
  readonly #handlers: StoreHandlers;
  readonly #maxKeys: number;
  readonly #members: Member[];
  readonly #endpoints: Endpoints;
  readonly #now: () => number;
  readonly #requireLeader: unknown[];
  readonly #trace: ((line: string) => void) | undefined;
  #closed = false;
  #auth = { blockedUntil: -Infinity, backoffMs: AUTH_BACKOFF_MS, error: '' };
  #watchers = new Map<number, { stream: DuplexStream | null; cancel: () => void }>();

  constructor(settings: EtcdSettings, handlers: StoreHandlers, module: EtcdModule = loadEtcd3(), options: EtcdStoreOptions = {}) {
    this.#handlers = handlers;
    this.#maxKeys = settings.max_keys;
    this.#now = options.now ?? (() => performance.now());
    this.#trace = options.trace;
    this.#endpoints = new Endpoints(settings.hosts.length, options.random);
    const grpc = loadGrpc();
    this.#requireLeader = grpc ? [requireLeaderInterceptor(grpc)] : [];
    const base: Record<string, unknown> = {
      dialTimeout: 2000,
      faultHandling: { host: () => ONCE, global: ONCE, watchBackoff: NO_BACKOFF },
      grpcOptions: {
        // gRPC pings find a dead TCP connection (a cut network) that no error would report.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // After an outage, reconnect within a second of etcd's return, not after gRPC's
        // default backoff (up to two minutes), which would keep the cluster masterless.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      },
    };
    if (settings.username !== undefined) {
      const password =
        settings.password_file !== undefined
          ? (readFileSync(settings.password_file, 'utf8').split(/\r?\n/)[0] ?? '')
          : (settings.password ?? '');
      base.auth = { username: settings.username, password };
    }
    if (settings.ca_file !== undefined) {
      const credentials: Record<string, Buffer> = { rootCertificate: readFileSync(settings.ca_file) };
      if (settings.cert_file !== undefined) credentials.certChain = readFileSync(settings.cert_file);
      if (settings.key_file !== undefined) credentials.privateKey = readFileSync(settings.key_file);
      base.credentials = credentials;
    }
    this.#members = settings.hosts.map((url) => ({ url, client: new module.Etcd3({ ...base, hosts: [url] }), keepAlives: 0 }));
  }

  /** Carry out one op; its result (if it has one) arrives through the handlers. */
  execute(op: StoreOp): void {
    if (this.#closed) return;
    switch (op.type) {
      case 'watch':
        this.#watch(op.id, op.prefix, op.fromRevision, op.timeoutMs);
        return;
      case 'unwatch': {
        const watcher = this.#watchers.get(op.id);
        this.#watchers.delete(op.id);
        watcher?.cancel();
        return;
      }
      case 'keepAlive':
        this.#keepAliveOnce(op.id, op.lease, op.timeoutMs);
        return;
      default:
        this.#unary(op);
    }
  }

  /** Stop: cancel watches, end the keep-alive streams, close the clients. Results still pending are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watcher of this.#watchers.values()) watcher.cancel();
    this.#watchers.clear();
    for (const member of this.#members) member.client.close();
  }

  #settleOnce(id: number, timeoutMs: number, onTimeout?: () => void): (result: StoreResult) => void {
    let done = false;
    const settle = (result: StoreResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.#trace?.(`#${id} ← ${result.type === 'error' ? `error (${result.kind}) ${result.error.slice(0, 80)}` : result.type}`);
      if (!this.#closed) this.#handlers.result(id, result);
    };
    const timer = setTimeout(() => {
      onTimeout?.();
      settle({ type: 'error', error: `timed out after ${Math.round(timeoutMs)} ms`, kind: 'timeout' });
    }, timeoutMs);
    return settle;
  }

  /** Credentials were refused lately: fail at once, without another check on etcd. */
  #authBlocked(): StoreResult | null {
    if (this.#now() >= this.#auth.blockedUntil) return null;
    return { type: 'error', error: this.#auth.error, kind: 'auth' };
  }

  #failed(index: number, err: unknown): StoreResult {
    const kind = classifyError(err);
    const error = (err instanceof Error ? err.message : String(err)).slice(0, 200);
    const now = this.#now();
    if (kind === 'auth') {
      this.#auth.error = error;
      this.#auth.blockedUntil = now + this.#auth.backoffMs;
      this.#auth.backoffMs = Math.min(AUTH_BACKOFF_MAX_MS, this.#auth.backoffMs * 2);
    } else if (kind !== 'other') {
      this.#endpoints.failed(index, now);
    }
    return { type: 'error', error, kind, endpoint: (this.#members[index] as Member).url };
  }

  #succeeded(index: number): void {
    this.#endpoints.succeeded(index);
    this.#auth.backoffMs = AUTH_BACKOFF_MS;
  }

  #unary(op: Exclude<StoreOp, { type: 'watch' } | { type: 'unwatch' } | { type: 'keepAlive' }>): void {
    const settle = this.#settleOnce(op.id, op.timeoutMs);
    const deadline = Date.now() + op.timeoutMs;
    const tried = new Set<number>();
    const attempt = (): void => {
      const blocked = this.#authBlocked();
      if (blocked) return settle(blocked);
      const index = this.#endpoints.pick(this.#now(), tried);
      tried.add(index);
      this.#trace?.(`${op.type} #${op.id} → ${(this.#members[index] as Member).url}`);
      this.#call(op, (this.#members[index] as Member).client, deadline).then(
        (result) => {
          this.#succeeded(index);
          settle(result);
        },
        (err: unknown) => {
          const failure = this.#failed(index, err);
          // On another member at once when this one is unreachable or leaderless (it cannot have applied the op).
          const retry =
            failure.type === 'error' && (failure.kind === 'unreachable' || failure.kind === 'no-leader' || failure.kind === 'tls');
          if (retry && tried.size < this.#members.length && deadline - Date.now() > 20 && !this.#closed) return attempt();
          settle(failure);
        },
      );
    };
    attempt();
  }

  #call(
    op: Exclude<StoreOp, { type: 'watch' } | { type: 'unwatch' } | { type: 'keepAlive' }>,
    client: EtcdClient,
    deadline: number,
  ): Promise<StoreResult> {
    const call = { deadline };
    const kv = client.kv;
    switch (op.type) {
      case 'grant':
        return client.leaseClient.leaseGrant({ TTL: op.ttlSeconds, ID: 0 }, call).then((res) => {
          if (res.error) throw new Error(res.error);
          return { type: 'grant', lease: String(res.ID), ttlSeconds: Number(res.TTL) };
        });
      case 'revoke':
        return client.leaseClient.leaseRevoke({ ID: op.lease }, call).then(
          () => ({ type: 'revoke' }),
          (err: Error) => {
            // Already gone (expired, or revoked before) is what we wanted.
            if (/lease not found/i.test(err.message)) return { type: 'revoke' };
            throw err;
          },
        );
      case 'put':
        return kv
          .put({ key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease }, call)
          .then((res) => ({ type: 'put', revision: revision(res.header.revision) }));
      case 'campaign': {
        const key = Buffer.from(op.key);
        const guard = Buffer.from(op.guard.key);
        const success: Array<Record<string, unknown>> = [{ request_put: { key, value: Buffer.from(op.value), lease: op.lease } }];
        for (const put of op.alsoPut)
          success.push({ request_put: { key: Buffer.from(put.key), value: Buffer.from(put.value), lease: put.lease } });
        if (op.alsoDelete !== undefined) success.push({ request_delete_range: { key: Buffer.from(op.alsoDelete) } });
        const compare = [
          { key, target: 1 /* Create */, result: 0 /* Equal */, create_revision: 0 },
          // Mod revision 0 compares equal for an absent key: "nobody wrote it since we read it".
          { key: guard, target: 2 /* Mod */, result: 0 /* Equal */, mod_revision: op.guard.modRevision },
        ];
        return kv.txn({ compare, success, failure: [{ request_range: { key } }, { request_range: { key: guard } }] }, call).then((res) => {
          const rev = revision(res.header.revision);
          if (res.succeeded) return { type: 'campaign', won: true, revision: rev, holder: null, guard: null };
          const holder = res.responses[0]?.response_range?.kvs[0];
          const guardKv = res.responses[1]?.response_range?.kvs[0];
          return {
            type: 'campaign',
            won: false,
            revision: rev,
            holder: holder ? toKeyValue(holder) : null,
            guard: guardKv ? toKeyValue(guardKv) : null,
          };
        });
      }
      case 'fenced': {
        const success: Array<Record<string, unknown>> = [];
        for (const key of op.deleteKeys ?? []) success.push({ request_delete_range: { key: Buffer.from(key) } });
        for (const put of op.puts ?? [])
          success.push({ request_put: { key: Buffer.from(put.key), value: Buffer.from(put.value), lease: put.lease } });
        const key = Buffer.from(op.fenceKey);
        const compare =
          op.fenceModRevision !== undefined
            ? [{ key, target: 2 /* Mod */, result: 0 /* Equal */, mod_revision: op.fenceModRevision }]
            : [{ key, target: 3 /* Value */, result: 0 /* Equal */, value: Buffer.from(op.fenceValue ?? '') }];
        return kv
          .txn({ compare, success, failure: [] }, call)
          .then((res) => ({ type: 'fenced', succeeded: res.succeeded, revision: revision(res.header.revision) }));
      }
      case 'sync':
        return kv
          .range({ key: Buffer.from(op.prefix), range_end: prefixEnd(op.prefix), limit: this.#maxKeys }, call)
          .then((res) => ({ type: 'sync', revision: revision(res.header.revision), kvs: res.kvs.map(toKeyValue) }));
    }
  }

  /**
   * One keep-alive on a stream of its own: a request that waits at a member (for a new etcd
   * leader) holds up nothing sent after it, and nothing needs matching answers to requests.
   * It goes to a member with no keep-alive pending if there is one.
   */
  #keepAliveOnce(id: number, lease: string, timeoutMs: number): void {
    const blocked = this.#authBlocked();
    if (blocked) {
      queueMicrotask(() => {
        if (!this.#closed) this.#handlers.result(id, blocked);
      });
      return;
    }
    const busy = new Set<number>();
    this.#members.forEach((member, index) => {
      if (member.keepAlives > 0) busy.add(index);
    });
    const index = this.#endpoints.pick(this.#now(), busy);
    const member = this.#members[index] as Member;
    this.#trace?.(`keepAlive #${id} → ${member.url}`);
    let stream: DuplexStream | null = null;
    let done = false;
    member.keepAlives++;
    const end = (): void => {
      if (done) return;
      done = true;
      member.keepAlives--;
      if (stream) closeStream(stream);
    };
    const settle = this.#settleOnce(id, timeoutMs, () => {
      this.#endpoints.failed(index, this.#now());
      end();
    });
    const fail = (err: unknown): void => {
      if (done) return;
      const failure = this.#failed(index, err);
      end();
      settle(failure);
    };
    member.client.leaseClient.leaseKeepAlive().then(
      (opened) => {
        stream = opened;
        if (done || this.#closed) {
          // Timed out (or closed) before the stream opened: nothing waits for it.
          opened.on('error', () => undefined);
          try {
            opened.end();
          } catch {
            // already closed
          }
          return;
        }
        opened.on('data', (res: { ID: string; TTL: string }) => {
          if (done) return;
          this.#succeeded(index);
          end();
          settle({ type: 'keepAlive', ttlSeconds: Math.max(0, Number(res.TTL) || 0) });
        });
        opened.on('error', (err: Error) => fail(err));
        opened.on('end', () => fail(new Error('keep-alive stream ended')));
        opened.write({ ID: lease });
      },
      (err: unknown) => fail(err),
    );
  }

  #watch(id: number, prefix: string, fromRevision: number, timeoutMs: number): void {
    let lost = false;
    let established = false;
    let stream: DuplexStream | null = null;
    const index = this.#endpoints.pick(this.#now());
    const member = this.#members[index] as Member;
    const cancel = (): void => {
      clearTimeout(timer);
      lost = true;
      if (stream) closeStream(stream);
    };
    this.#watchers.set(id, { stream: null, cancel });
    const lose = (reason: string, err?: unknown): void => {
      if (lost || this.#closed) return;
      if (err !== undefined) this.#failed(index, err);
      const known = this.#watchers.has(id);
      this.#watchers.delete(id);
      cancel();
      if (known) this.#handlers.watchLost(id, `${reason} (at ${member.url})`);
    };
    const timer = setTimeout(() => {
      if (!established) lose(`not established within ${Math.round(timeoutMs)} ms`, new Error('watch timed out'));
    }, timeoutMs);
    const blocked = this.#authBlocked();
    if (blocked) {
      queueMicrotask(() => lose(blocked.type === 'error' ? blocked.error : 'authentication refused'));
      return;
    }
    member.client.watchClient.watch({ interceptors: this.#requireLeader }).then(
      (opened) => {
        if (lost || this.#closed) {
          stream = opened;
          cancel();
          return;
        }
        stream = opened;
        const watcher = this.#watchers.get(id);
        if (watcher) watcher.stream = opened;
        opened.on('data', (res: WatchResponse) => {
          if (lost) return;
          if (res.created) {
            established = true;
            clearTimeout(timer);
            this.#succeeded(index);
            // A start past the member's revision: the store went back (restored, or wiped) after
            // our read. etcd would wait for that revision and send nothing before: read again.
            const at = Number(res.header?.revision);
            if (Number.isSafeInteger(at) && fromRevision > at + 1)
              return lose(`the store's revision ${at} is below the one we read (${fromRevision - 1}): restored or wiped`);
          }
          if (res.canceled)
            return lose(
              `cancelled by etcd: ${res.cancel_reason || (res.compact_revision && res.compact_revision !== '0' ? `compacted at revision ${res.compact_revision}` : 'no reason given')}`,
            );
          if (!res.events || res.events.length === 0) return;
          let batch: WatchBatch;
          try {
            batch = {
              events: res.events.map((event) => ({ type: /^delete$/i.test(event.type) ? 'delete' : 'put', kv: toKeyValue(event.kv) })),
            };
          } catch (err) {
            return lose((err as Error).message);
          }
          this.#handlers.watch(id, batch);
        });
        opened.on('error', (err: Error) => lose(err?.message ?? 'error', err));
        opened.on('end', () => lose('ended'));
        opened.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRevision) } });
      },
      (err: unknown) => lose(err instanceof Error ? err.message : String(err), err),
    );
  }
}

/** Done with a stream: nothing of it reaches us any more, and an error it raises while closing is ignored. */
function closeStream(stream: DuplexStream): void {
  stream.removeAllListeners();
  stream.on('error', () => undefined);
  try {
    stream.cancel?.();
    stream.end();
  } catch {
    // already closed
  }
}
