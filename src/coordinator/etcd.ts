/**
 * The etcd adapter: carries out the lease election's store ops with the `etcd3` client
 * (an optional dependency, loaded only when a coordinator is configured) and hands back
 * their results and the watch's events. It decides nothing.
 *
 * Every op gets exactly one result: etcd's answer, or an error at the op's `timeoutMs`
 * (a late answer is dropped; the machine is written for ops that failed yet took effect).
 * Keep-alives share one stream, answered in order; a keep-alive that times out tears the
 * stream down (a late answer could not be told from the next one's), and the next opens a
 * new one. A watch that disconnects, errs or is cancelled by etcd (compaction) is reported
 * lost at once and not resumed: the machine reads everything again.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { EtcdSettings } from './types';
import type { KeyValue, StoreOp, StoreResult, WatchBatch } from '../protocol/store';

export type { EtcdSettings } from './types';

export const INSTALL_COMMAND = 'npm install etcd3';

export interface StoreHandlers {
  result(id: number, result: StoreResult): void;
  watch(id: number, batch: WatchBatch): void;
  watchLost(id: number, reason: string): void;
}

/** The parts of `etcd3` we use, typed loosely: the package is optional, so its types may be absent. */
interface EtcdModule {
  Etcd3: new (options: Record<string, unknown>) => EtcdClient;
  isRecoverableError(err: unknown): boolean;
}
interface EtcdClient {
  leaseClient: {
    leaseGrant(req: { TTL: number; ID: number }, options?: unknown): Promise<{ ID: string; TTL: string; error?: string }>;
    leaseRevoke(req: { ID: string }, options?: unknown): Promise<unknown>;
    leaseKeepAlive(options?: unknown): Promise<DuplexStream>;
  };
  kv: {
    put(req: { key: Buffer; value: Buffer; lease: string }, options?: unknown): Promise<{ header: { revision: string } }>;
    range(req: { key: Buffer; range_end: Buffer; limit: number }, options?: unknown): Promise<{ header: { revision: string }; kvs: RawKeyValue[] }>;
    txn(req: Record<string, unknown>, options?: unknown): Promise<{ header: { revision: string }; succeeded: boolean; responses: Array<{ response_range?: { kvs: RawKeyValue[] } }> }>;
  };
  watch(): { prefix(p: string): { startRevision(r: string): { watcher(): Watcher } } };
  close(): void;
}
interface DuplexStream {
  write(data: unknown): boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  end(): void;
  cancel?(): void;
  removeAllListeners(): unknown;
}
interface Watcher {
  on(event: string, listener: (...args: any[]) => void): unknown;
  cancel(): Promise<void>;
}
interface RawKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  lease: string;
}

/**
 * Load the client, or fail with the command that installs it. Resolved from the
 * application's own folder first (where `npm install etcd3` puts it), then from ours.
 */
export function loadEtcd3(candidates: Array<() => unknown> = [() => createRequire(`${process.cwd()}/`)('etcd3'), () => require('etcd3')]): EtcdModule {
  for (const load of candidates) {
    try {
      return load() as EtcdModule;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(`MultiServer config: \`coordinator\` is set to etcd, but the etcd client is not installed; run \`${INSTALL_COMMAND}\``);
}

/** A policy that runs the call once (etcd3's default retries and circuit breakers would hide failures behind their own delays). */
const ONCE = {
  // Always a promise: etcd3 chains `.catch` on it, also where the call throws at once.
  execute: <T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | Promise<T>): Promise<T> => new Promise<T>((resolve) => resolve(fn({ signal: new AbortController().signal, attempt: 0 }))),
};

/** Reconnecting a broken watch is the machine's business (it reads again); the client's own backoff only idles. */
interface Backoff {
  duration: number;
  next(): Backoff;
}
const NO_BACKOFF: Backoff = {
  // Only a pause between the client's own reconnect attempts (we cancel a broken watch first).
  duration: 250,
  next: () => NO_BACKOFF,
};

function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, 'utf8');
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function revision(value: string | number | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`etcd answered a revision out of range: ${String(value).slice(0, 30)}`);
  return n;
}

function toKeyValue(raw: RawKeyValue): KeyValue {
  return {
    key: raw.key.toString('utf8'),
    value: raw.value.toString('utf8'),
    createRevision: revision(raw.create_revision),
    modRevision: revision(raw.mod_revision),
    lease: String(raw.lease ?? '0'),
  };
}

export class EtcdStore {
  #client: EtcdClient;
  #handlers: StoreHandlers;
  #maxKeys: number;
  #closed = false;
  #keepAlive: { stream: DuplexStream | null; opening: Promise<DuplexStream> | null; queue: Array<{ id: number; settle: (result: StoreResult) => void }> } = {
    stream: null,
    opening: null,
    queue: [],
  };
  #watchers = new Map<number, Watcher | null>();

  constructor(settings: EtcdSettings, handlers: StoreHandlers, module: EtcdModule = loadEtcd3()) {
    this.#handlers = handlers;
    this.#maxKeys = settings.max_keys;
    const options: Record<string, unknown> = {
      hosts: settings.hosts,
      dialTimeout: 2000,
      faultHandling: {
        host: () => ONCE,
        // One retry, on another member: a member that is down answers at once (connection refused).
        global: { execute: <T>(fn: (context: { signal: AbortSignal; attempt: number }) => Promise<T>): Promise<T> => retryOnce(fn, (err) => module.isRecoverableError(err)) },
        watchBackoff: NO_BACKOFF,
      },
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
    if (settings.username !== undefined) options.auth = { username: settings.username, password: settings.password ?? '' };
    if (settings.ca_file !== undefined) {
      const credentials: Record<string, Buffer> = { rootCertificate: readFileSync(settings.ca_file) };
      if (settings.cert_file !== undefined) credentials.certChain = readFileSync(settings.cert_file);
      if (settings.key_file !== undefined) credentials.privateKey = readFileSync(settings.key_file);
      options.credentials = credentials;
    }
    this.#client = new module.Etcd3(options);
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
        if (watcher) watcher.cancel().catch(() => undefined);
        return;
      }
      case 'keepAlive':
        this.#keepAliveOnce(op.id, op.lease, op.timeoutMs);
        return;
      default:
        this.#unary(op);
    }
  }

  /** Stop: cancel watches, end the keep-alive stream, close the client. Results still pending are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watcher of this.#watchers.values()) await watcher?.cancel().catch(() => undefined);
    this.#watchers.clear();
    this.#endKeepAliveStream('closed');
    this.#client.close();
  }

  #settleOnce(id: number, timeoutMs: number): (result: StoreResult) => void {
    let done = false;
    const settle = (result: StoreResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!this.#closed) this.#handlers.result(id, result);
    };
    const timer = setTimeout(() => settle({ type: 'error', error: `timed out after ${Math.round(timeoutMs)} ms` }), timeoutMs);
    return settle;
  }

  #unary(op: Exclude<StoreOp, { type: 'watch' } | { type: 'unwatch' } | { type: 'keepAlive' }>): void {
    const settle = this.#settleOnce(op.id, op.timeoutMs);
    const call = { deadline: Date.now() + op.timeoutMs };
    const kv = this.#client.kv;
    let promise: Promise<StoreResult>;
    switch (op.type) {
      case 'grant':
        promise = this.#client.leaseClient.leaseGrant({ TTL: op.ttlSeconds, ID: 0 }, call).then((res) => {
          if (res.error) throw new Error(res.error);
          return { type: 'grant', lease: String(res.ID), ttlSeconds: Number(res.TTL) };
        });
        break;
      case 'revoke':
        promise = this.#client.leaseClient.leaseRevoke({ ID: op.lease }, call).then(
          () => ({ type: 'revoke' }),
          (err: Error) => {
            // Already gone (expired, or revoked before) is what we wanted.
            if (/lease not found/i.test(err.message)) return { type: 'revoke' };
            throw err;
          },
        );
        break;
      case 'put':
        promise = kv.put({ key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease }, call).then((res) => ({ type: 'put', revision: revision(res.header.revision) }));
        break;
      case 'campaign': {
        const key = Buffer.from(op.key);
        const success: Array<Record<string, unknown>> = [{ request_put: { key, value: Buffer.from(op.value), lease: op.lease } }];
        if (op.alsoDelete !== undefined) success.push({ request_delete_range: { key: Buffer.from(op.alsoDelete) } });
        promise = kv
          .txn({ compare: [{ key, target: 1 /* Create */, result: 0 /* Equal */, create_revision: 0 }], success, failure: [{ request_range: { key } }] }, call)
          .then((res) => {
            const rev = revision(res.header.revision);
            if (res.succeeded) return { type: 'campaign', won: true, revision: rev, holder: null };
            const raw = res.responses[0]?.response_range?.kvs[0];
            return { type: 'campaign', won: false, revision: rev, holder: raw ? toKeyValue(raw) : null };
          });
        break;
      }
      case 'fenced': {
        const success: Array<Record<string, unknown>> = [];
        if (op.deleteKey !== undefined) success.push({ request_delete_range: { key: Buffer.from(op.deleteKey) } });
        if (op.put) success.push({ request_put: { key: Buffer.from(op.put.key), value: Buffer.from(op.put.value), lease: op.put.lease } });
        promise = kv
          .txn({ compare: [{ key: Buffer.from(op.fenceKey), target: 1 /* Create */, result: 0 /* Equal */, create_revision: op.term }], success, failure: [] }, call)
          .then((res) => ({ type: 'fenced', succeeded: res.succeeded, revision: revision(res.header.revision) }));
        break;
      }
      case 'sync':
        promise = kv
          .range({ key: Buffer.from(op.prefix), range_end: prefixEnd(op.prefix), limit: this.#maxKeys }, call)
          .then((res) => ({ type: 'sync', revision: revision(res.header.revision), kvs: res.kvs.map(toKeyValue) }));
        break;
    }
    promise.then(settle, (err: Error) => settle({ type: 'error', error: err.message.slice(0, 200) }));
  }

  #keepAliveOnce(id: number, lease: string, timeoutMs: number): void {
    const state = this.#keepAlive;
    const settle = this.#settleOnce(id, timeoutMs);
    const entry = {
      id,
      settle: (result: StoreResult) => {
        clearTimeout(tearDown);
        settle(result);
      },
    };
    // A keep-alive that times out leaves the stream out of step: close it, the next one opens a new one.
    const tearDown = setTimeout(() => this.#endKeepAliveStream('a keep-alive timed out'), timeoutMs);
    state.queue.push(entry);
    const send = (stream: DuplexStream): void => {
      if (stream !== state.stream) return entry.settle({ type: 'error', error: 'keep-alive stream closed' });
      stream.write({ ID: lease });
    };
    if (state.stream) return send(state.stream);
    if (!state.opening) {
      state.opening = this.#client.leaseClient.leaseKeepAlive().then((stream) => {
        state.opening = null;
        if (this.#closed) {
          stream.end();
          throw new Error('closed');
        }
        state.stream = stream;
        stream.on('data', (res: { ID: string; TTL: string }) => {
          const head = state.queue.shift();
          head?.settle({ type: 'keepAlive', ttlSeconds: Math.max(0, Number(res.TTL) || 0) });
        });
        const broken = (why: string) => () => {
          if (state.stream === stream) this.#endKeepAliveStream(why);
        };
        stream.on('error', (err: Error) => broken(err.message)());
        stream.on('end', broken('stream ended'));
        return stream;
      });
      state.opening.catch((err: Error) => {
        state.opening = null;
        this.#failKeepAlives(err.message);
      });
    }
    state.opening.then(send, () => undefined);
  }

  #failKeepAlives(why: string): void {
    const queue = this.#keepAlive.queue.splice(0);
    for (const entry of queue) entry.settle({ type: 'error', error: `keep-alive: ${why}` });
  }

  #endKeepAliveStream(why: string): void {
    const state = this.#keepAlive;
    const stream = state.stream;
    state.stream = null;
    if (stream) {
      stream.removeAllListeners();
      stream.on('error', () => undefined);
      try {
        stream.cancel?.();
        stream.end();
      } catch {
        // already closed
      }
    }
    this.#failKeepAlives(why);
  }

  #watch(id: number, prefix: string, fromRevision: number, timeoutMs: number): void {
    let lost = false;
    let established = false;
    const watcher = this.#client.watch().prefix(prefix).startRevision(String(fromRevision)).watcher();
    this.#watchers.set(id, watcher);
    const lose = (reason: string): void => {
      clearTimeout(timer);
      if (lost || this.#closed) return;
      lost = true;
      const known = this.#watchers.has(id);
      this.#watchers.delete(id);
      watcher.cancel().catch(() => undefined);
      if (known) this.#handlers.watchLost(id, reason);
    };
    const timer = setTimeout(() => {
      if (!established) lose(`not established within ${Math.round(timeoutMs)} ms`);
    }, timeoutMs);
    watcher.on('connected', () => {
      established = true;
      clearTimeout(timer);
    });
    watcher.on('data', (res: { events: Array<{ type: string; kv: RawKeyValue }> }) => {
      if (lost || !this.#watchers.has(id)) return;
      let batch: WatchBatch;
      try {
        batch = { events: res.events.map((event) => ({ type: event.type === 'Delete' ? 'delete' : 'put', kv: toKeyValue(event.kv) })) };
      } catch (err) {
        return lose((err as Error).message);
      }
      if (batch.events.length > 0) this.#handlers.watch(id, batch);
    });
    watcher.on('disconnected', (err: Error) => lose(`disconnected: ${err?.message ?? ''}`));
    watcher.on('error', (err: Error) => lose(err?.message ?? 'error'));
    watcher.on('end', () => lose('ended'));
  }
}

/** Run `fn`; on a failure etcd3 calls recoverable (a member unreachable), once more (on another member). */
async function retryOnce<T>(fn: (context: { signal: AbortSignal; attempt: number }) => Promise<T>, recoverable: (err: unknown) => boolean): Promise<T> {
  const signal = new AbortController().signal;
  try {
    return await fn({ signal, attempt: 0 });
  } catch (err) {
    if (!err || typeof err !== 'object' || !recoverable(err)) throw err;
    return fn({ signal, attempt: 1 });
  }
}
