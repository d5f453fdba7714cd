/**
 * `node dist/tools/etcd-load.js [--nodes 3,10,100] [--seconds 60] [--etcd]`: the etcd work
 * the etcd mode causes, per server and in all, at steady state: requests by kind (keep-alives,
 * record writes, reads, transactions) and watch events delivered, with `data` left alone and
 * with every server changing its `data` every tick.
 *
 * In the simulator (sim/lease-store.ts counts what reaches the store) for every size; with
 * `--etcd`, also against a real 3-member etcd on 127.0.0.1 (etcd's default timings) with that
 * many lease-election machines in this process, counted by etcd itself (its /metrics:
 * gRPC calls started by method, and watch events sent).
 *
 * Tick 1 s, check_beats 3, the default TTL (5 s at etcd's default election timeout).
 */
import { parseArgs } from 'node:util';
import { toolArgs } from './tool-args';
import { performance } from 'node:perf_hooks';
import { LeaseSimCluster } from '../sim/lease-cluster';
import { defaultTtlSeconds } from '../src/coordinator/timing';
import { EtcdCluster } from './etcd-cluster';
import { LeaseNode } from './lease-node';

const TICK_MS = 1000;
const CHECK_BEATS = 3;
const TTL_S = defaultTtlSeconds(TICK_MS * CHECK_BEATS, 1000);

interface Load {
  nodes: number;
  data: boolean;
  seconds: number;
  keepAlives: number;
  writes: number;
  reads: number;
  events: number;
}

function row(load: Load, where: string): string {
  const per = (n: number): string => (n / load.seconds).toFixed(1);
  const perServer = (n: number): string => (n / load.seconds / load.nodes).toFixed(2);
  return `| ${where} | ${load.nodes} | ${load.data ? 'every tick' : 'unchanged'} | ${per(load.keepAlives)} (${perServer(load.keepAlives)}) | ${per(load.writes)} (${perServer(load.writes)}) | ${per(load.reads)} | ${per(load.events)} (${perServer(load.events)}) |`;
}

function simulate(nodes: number, data: boolean, seconds: number): Load {
  const sim = new LeaseSimCluster({
    seed: nodes * 2 + (data ? 1 : 0),
    tickMs: TICK_MS,
    checkBeats: CHECK_BEATS,
    ttlSeconds: TTL_S,
    minDelayMs: 0.2,
    maxDelayMs: 1,
    expirySweepMs: 500,
  });
  const names = Array.from({ length: nodes }, (_, i) => `server${String(i).padStart(3, '0')}`);
  for (const name of names) sim.add(name, { at: Math.random() * 100 });
  sim.runFor(10_000);
  if (sim.agreedMaster() === null) throw new Error(`${nodes} simulated servers did not agree`);
  let step = 0;
  const change = (): void => {
    step++;
    for (const name of names) sim.setData(name, { step, from: name });
    sim.at(sim.now + TICK_MS, change);
  };
  if (data) change();
  sim.runFor(5000);
  const before = { ...sim.store.opsByType };
  const events = sim.store.eventsDelivered;
  sim.runFor(seconds * 1000);
  const delta = (type: string): number => (sim.store.opsByType[type] ?? 0) - (before[type] ?? 0);
  return {
    nodes,
    data,
    seconds,
    keepAlives: delta('keepAlive'),
    writes: delta('put') + delta('campaign') + delta('fenced'),
    reads: delta('sync'),
    events: sim.store.eventsDelivered - events,
  };
}

async function metrics(etcd: EtcdCluster): Promise<{ keepAlives: number; writes: number; reads: number; events: number }> {
  const total = { keepAlives: 0, writes: 0, reads: 0, events: 0 };
  for (const url of etcd.endpoints) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const line of text.split('\n')) {
      const value = Number(line.split(' ').pop());
      if (line.startsWith('grpc_server_msg_received_total') && line.includes('grpc_method="LeaseKeepAlive"')) total.keepAlives += value;
      if (line.startsWith('grpc_server_started_total') && /grpc_method="(Put|Txn)"/.test(line)) total.writes += value;
      if (line.startsWith('grpc_server_started_total') && line.includes('grpc_method="Range"')) total.reads += value;
      if (line.startsWith('etcd_debugging_mvcc_events_total')) total.events += value;
    }
  }
  return total;
}

async function onEtcd(etcd: EtcdCluster, nodes: number, data: boolean, seconds: number): Promise<Load> {
  const prefix = `/psm-load-${process.pid}/${nodes}-${data ? 'data' : 'idle'}/`;
  const servers = Array.from(
    { length: nodes },
    (_, i) =>
      new LeaseNode({
        hostname: `server${String(i).padStart(3, '0')}`,
        hosts: etcd.endpoints,
        prefix,
        tickMs: TICK_MS,
        checkBeats: CHECK_BEATS,
        ttlSeconds: TTL_S,
        logLevel: 1,
      }),
  );
  for (const server of servers) server.start();
  try {
    await new Promise((resolve) => setTimeout(resolve, 8000));
    let step = 0;
    const timer = data
      ? setInterval(() => {
          step++;
          for (const server of servers) server.run((m) => (m.setData({ step }), null));
        }, TICK_MS)
      : null;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const before = await metrics(etcd);
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const after = await metrics(etcd);
    if (timer) clearInterval(timer);
    const elapsed = (performance.now() - started) / 1000;
    return {
      nodes,
      data,
      seconds: elapsed,
      keepAlives: after.keepAlives - before.keepAlives,
      writes: after.writes - before.writes,
      reads: after.reads - before.reads,
      events: after.events - before.events,
    };
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }
}

async function main(): Promise<void> {
  const usage = 'usage: node dist/tools/etcd-load.js [--nodes 3,10,100] [--seconds 60] [--etcd] [--etcd-nodes 3,10]';
  const { values } = toolArgs(usage, () =>
    parseArgs({
      options: {
        nodes: { type: 'string', default: '3,10,100' },
        seconds: { type: 'string', default: '60' },
        etcd: { type: 'boolean', default: false },
        'etcd-nodes': { type: 'string', default: '3,10' },
      },
      strict: true,
    }),
  );
  const sizes = values.nodes.split(',').map(Number);
  const seconds = Number(values.seconds);
  console.log(`tick ${TICK_MS} ms, check_beats ${CHECK_BEATS}, TTL ${TTL_S} s; per second in all (per server)\n`);
  console.log('| where | servers | data | keep-alives/s | writes/s | reads/s | watch events/s |');
  console.log('|---|--:|---|--:|--:|--:|--:|');
  for (const nodes of sizes) for (const data of [false, true]) console.log(row(simulate(nodes, data, seconds), 'simulator'));
  if (!values.etcd) return;
  const etcd = await EtcdCluster.start({ heartbeatMs: 100, electionMs: 1000 });
  try {
    for (const nodes of values['etcd-nodes'].split(',').map(Number))
      for (const data of [false, true]) console.log(row(await onEtcd(etcd, nodes, data, Math.min(seconds, 30)), 'etcd 3.4'));
  } finally {
    await etcd.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
}
