/**
 * The `etcd3` client as the adapter (etcd.ts) uses it: the parts of its API we call, typed
 * loosely (the package is optional, so its types may be absent), loading it (or failing with
 * the command that installs it), etcd3's own gRPC for the `hasleader` interceptor, the call
 * policy and backoff that leave retries to the election, etcd's values as the store contract's,
 * and why a call failed.
 */
import { createRequire } from 'node:module';
import type { KeyValue, StoreErrorKind } from '../protocol/store';

export const INSTALL_COMMAND = 'npm install etcd3';

/** The parts of `etcd3` we use, typed loosely: the package is optional, so its types may be absent. */
export interface EtcdModule {
  Etcd3: new (options: Record<string, unknown>) => EtcdClient;
  isRecoverableError(err: unknown): boolean;
}
export interface EtcdClient {
  leaseClient: {
    leaseGrant(req: { TTL: number; ID: number }, options?: unknown): Promise<{ ID: string; TTL: string; error?: string }>;
    leaseRevoke(req: { ID: string }, options?: unknown): Promise<unknown>;
    leaseKeepAlive(options?: unknown): Promise<DuplexStream>;
  };
  kv: {
    put(req: { key: Buffer; value: Buffer; lease: string }, options?: unknown): Promise<{ header: { revision: string } }>;
    range(
      req: { key: Buffer; range_end: Buffer; limit: number },
      options?: unknown,
    ): Promise<{ header: { revision: string }; kvs: RawKeyValue[] }>;
    txn(
      req: Record<string, unknown>,
      options?: unknown,
    ): Promise<{ header: { revision: string }; succeeded: boolean; responses: Array<{ response_range?: { kvs: RawKeyValue[] } }> }>;
  };
  watchClient: { watch(options?: unknown): Promise<DuplexStream> };
  close(): void;
}
export interface DuplexStream {
  write(data: unknown): boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
  end(): void;
  cancel?(): void;
  removeAllListeners(): unknown;
}
export interface RawKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  lease: string;
}
export interface WatchResponse {
  header?: { revision?: string };
  created?: boolean;
  canceled?: boolean;
  cancel_reason?: string;
  compact_revision?: string;
  events?: Array<{ type: string; kv: RawKeyValue }>;
}
/** The bit of @grpc/grpc-js (etcd3's own copy) that adds metadata to a call. */
export interface GrpcModule {
  InterceptingCall: new (next: unknown, requester: Record<string, unknown>) => unknown;
}

/**
 * Load the client, or fail with the command that installs it. Resolved from the
 * application's own folder first (where `npm install etcd3` puts it), then from ours.
 */
export function loadEtcd3(
  candidates: Array<() => unknown> = [() => createRequire(`${process.cwd()}/`)('etcd3'), () => require('etcd3')],
): EtcdModule {
  for (const load of candidates) {
    try {
      return load() as EtcdModule;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(`MultiServer config: \`coordinator\` is set to etcd, but the etcd client is not installed; run \`${INSTALL_COMMAND}\``);
}

/** etcd3's own gRPC (interceptors must come from the copy that makes the calls), or null. */
export function loadGrpc(): GrpcModule | null {
  for (const base of [`${process.cwd()}/`, __filename]) {
    try {
      const etcd3 = createRequire(base).resolve('etcd3');
      return createRequire(etcd3)('@grpc/grpc-js') as GrpcModule;
    } catch {
      // next
    }
  }
  return null;
}

/** A policy that runs the call once (etcd3's default retries and circuit breakers would hide failures behind their own delays). */
export const ONCE = {
  // Always a promise: etcd3 chains `.catch` on it, also where the call throws at once.
  execute: <T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | Promise<T>): Promise<T> =>
    new Promise<T>((resolve) => resolve(fn({ signal: new AbortController().signal, attempt: 0 }))),
};

/** Reconnecting a broken watch is the machine's business (it reads again); the client's own backoff only idles. */
export interface Backoff {
  duration: number;
  next(): Backoff;
}
export const NO_BACKOFF: Backoff = { duration: 250, next: () => NO_BACKOFF };

export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, 'utf8');
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export function revision(value: string | number | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`etcd answered a revision out of range: ${String(value).slice(0, 30)}`);
  return n;
}

export function toKeyValue(raw: RawKeyValue): KeyValue {
  return {
    key: raw.key.toString('utf8'),
    value: raw.value.toString('utf8'),
    createRevision: revision(raw.create_revision),
    modRevision: revision(raw.mod_revision),
    lease: String(raw.lease ?? '0'),
  };
}

/** Why an op failed, from etcd3's error classes and etcd's and gRPC's messages. */
export function classifyError(err: unknown): StoreErrorKind {
  const name = err instanceof Error ? err.constructor.name : '';
  const message = err instanceof Error ? err.message : String(err);
  if (
    /Authentication|PermissionDenied|UserNotFound|Unauthenticated|InvalidAuthToken/.test(name) ||
    /authentication failed|authentication is not enabled|permission denied|invalid auth token|user name not found|UNAUTHENTICATED/i.test(
      message,
    )
  )
    return 'auth';
  if (/ssl|tls|certificate|handshake|CERT_|self.signed|alpn/i.test(message)) return 'tls';
  if (/no leader|proposal dropped|leader changed|not capable|request timed out|too many requests/i.test(message)) return 'no-leader';
  if (/DeadlineExceeded/.test(name) || /deadline exceeded|timed out/i.test(message)) return 'timeout';
  if (
    /Unavailable|ClientClosed/.test(name) ||
    /UNAVAILABLE|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|No connection|connect|socket/i.test(message)
  )
    return 'unreachable';
  return 'other';
}

/** Adds etcd's `hasleader=true` to a call: a member without a leader refuses it or ends it (clientv3's WithRequireLeader). */
export function requireLeaderInterceptor(grpc: GrpcModule): unknown {
  return (options: unknown, nextCall: (options: unknown) => unknown) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(
        metadata: { clone(): { set(key: string, value: string): void } },
        listener: unknown,
        next: (metadata: unknown, listener: unknown) => void,
      ) {
        const copy = metadata.clone();
        copy.set('hasleader', 'true');
        next(copy, listener);
      },
    });
}
