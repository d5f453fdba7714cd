/**
 * Prometheus metrics, on prom-client (an optional dependency, loaded only when metrics are
 * configured or asked for). The registry is this component's own, so two components in
 * one process never collide and an app merges it into its registry with `Registry.merge`.
 * Every value is read from the component when scraped (collect callbacks): the packet
 * path pays nothing for metrics.
 */
import type { HealthStatus } from '../app/health';
import { failoverClock, type FailoverSource } from './failover';
import type { ServerRecord } from '../elector/types';

/** The counters the component keeps (`multi.stats`); fields added later are optional here. */
export interface MetricsStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: Partial<Record<string, number>>;
  oldKeyPackets: number;
  elections: number;
  sendErrors: number;
  failovers: number;
  lastFailoverMs: number;
  handoffs?: number;
}

/** What the metrics are read from: the component. */
export interface MetricsSource extends FailoverSource {
  readonly master: boolean;
  readonly masterHostname: string;
  readonly servers: Record<string, ServerRecord>;
  readonly term: number;
  readonly eligible: boolean;
  readonly members: string[];
  readonly stats: MetricsStats;
  /** The health check's state (null or absent: no check). */
  readonly health?: HealthStatus | null;
}

/**
 * The part of a prom-client `Registry` an app uses. It is a real prom-client Registry;
 * TypeScript apps pass it to `Registry.merge` as `multi.metricsRegistry() as Registry`
 * (the package's types do not name prom-client, so apps without it still compile).
 */
export interface MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
  getMetricsAsJSON(): Promise<unknown[]>;
  setDefaultLabels(labels: Record<string, string | number>): void;
}

/** The prefix of every metric name. */
export const METRIC_PREFIX = 'pixl_multi_';

type PromClient = typeof import('prom-client');

let promClient: PromClient | null = null;

/** prom-client, or an error that says how to install it. */
function loadPromClient(): PromClient {
  if (promClient) return promClient;
  try {
    promClient = require('prom-client') as PromClient;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /prom-client/.test((err as Error).message)) {
      throw new Error('MultiServer metrics need the prom-client package, which is not installed: run `npm install prom-client`');
    }
    throw err;
  }
  return promClient;
}

/** A new registry holding the component's metrics; throws when prom-client is missing. */
export function createMetricsRegistry(source: MetricsSource): MetricsRegistry {
  const prom = loadPromClient();
  const registry = new prom.Registry();
  const failovers = failoverClock(source);
  const registers = [registry];

  const gauge = (name: string, help: string, read: () => number): void => {
    new prom.Gauge({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  // A counter whose total lives in the component: reset, then add the total, at each scrape.
  const counter = (name: string, help: string, read: () => number): void => {
    new prom.Counter({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };

  gauge('is_master', '1 while this server is the master, else 0.', () => (source.master ? 1 : 0));
  gauge('master_known', '1 while this server knows an agreed master (what the health route answers 200 for), else 0.', () =>
    source.masterHostname ? 1 : 0,
  );
  gauge('eligible', '1 while this server may become master, else 0.', () => (source.eligible ? 1 : 0));
  gauge(
    'health_check_passing',
    "1 while this server's health check lets it be master (passing, or no result yet), 0 while it fails, -1 without a check.",
    () => (source.health ? (source.health.healthy ? 1 : 0) : -1),
  );
  gauge(
    'health_check_failures',
    'Failures in a row of the health check (0 after a pass or without a check).',
    () => source.health?.failures ?? 0,
  );
  counter('health_checks_total', 'Health checks run.', () => source.health?.checks ?? 0);
  gauge(
    'term',
    'The fencing token: on the master the term it claimed and serves under, elsewhere the highest term this server knows.',
    () => source.term,
  );
  gauge('members', 'Live eligible servers (self included) that work is split over.', () => source.members.length);
  gauge('servers', "Servers in this server's table, self included.", () => Object.keys(source.servers).length);
  counter('failovers_total', 'Times this server saw the master change (lost and replaced, or handed over).', () => source.stats.failovers);
  gauge(
    'last_failover_seconds',
    "How long the last failover took: from the lost master's last heartbeat heard here to knowing the next master (0 before any).",
    () => (failovers.last?.ms ?? 0) / 1000,
  );
  gauge(
    'last_failover_timestamp_seconds',
    'When the last failover completed, as Unix time (0 before any).',
    () => (failovers.last?.at ?? 0) / 1000,
  );
  counter('elections_total', 'Times this server became master.', () => source.stats.elections);
  counter(
    'handoffs_total',
    'Handoffs this server completed as the master handing over (its stepDown(), or a promote() asked of it).',
    () => source.stats.handoffs ?? 0,
  );
  counter('packets_received_total', 'Datagrams received on the cluster port.', () => source.stats.packetsIn);
  counter('packets_sent_total', 'Datagrams sent.', () => source.stats.packetsOut);
  counter('received_bytes_total', 'Bytes received on the cluster port.', () => source.stats.bytesIn);
  counter('sent_bytes_total', 'Bytes sent.', () => source.stats.bytesOut);
  counter('send_errors_total', 'Datagrams the socket failed to send.', () => source.stats.sendErrors);
  counter(
    'old_key_packets_total',
    'Authenticated datagrams verified by a secret_key other than the first: 0 once a rotation is complete.',
    () => source.stats.oldKeyPackets,
  );
  new prom.Counter({
    name: METRIC_PREFIX + 'dropped_packets_total',
    help: 'Datagrams dropped, by reason (malformed, unauthenticated, stale, unverified, ...).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(source.stats.dropped)) {
        if (count) this.inc({ reason }, count);
      }
    },
  });
  return registry;
}
