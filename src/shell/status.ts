/**
 * The status document: one schema for what a server serves as JSON (http_status_uri), what
 * the status page polls (http_ui_uri) and what the status CLI prints with --json. The
 * component's properties as before, each server's state as an operator reads it, and the
 * servers that left recently; a server fills `stats` and `lastFailover`, the CLI (an
 * observer, not a server) `observer`.
 */
import type { ServerHealth, ServerRecord } from '../elector/types';
import { deadAfterMs, judge, masterOf, type ServerState } from './view';
import type { Failover, FailoverClock } from './failover';
import type { HealthStatus } from '../app/health';

/** What the document is built from: the component. */
export interface StatusSource {
  readonly hostname: string;
  readonly master: boolean;
  readonly masterHostname: string;
  readonly term: number;
  readonly eligible: boolean;
  readonly members: string[];
  readonly servers: Record<string, ServerRecord>;
  readonly stats: object;
  readonly settings: Readonly<{ heartbeat_freq: number; check_beats: number; cluster_id: string }> | null;
  /** The health check's state (null or absent: no check). */
  readonly health?: HealthStatus | null;
}

export interface ServerView {
  hostname: string;
  ip: string;
  state: ServerState;
  claimsMaster: boolean;
  eligible: boolean;
  self: boolean;
  locked: boolean;
  term: number;
  priority: number;
  /** Milliseconds since it was last heard (0 for this server). */
  lastHeardMs: number;
  uptime: number;
  /** The timing its silence is judged by: its own where its heartbeats carry it (the CLI), else the writer's. */
  tickMs: number;
  checkBeats: number;
  /** Its health check as it reports it (null: none, or it does not say). */
  health: ServerHealth | null;
}

/** What the status CLI heard and sent while it listened (null in a server's document). */
export interface ObserverReport {
  port: number;
  listenedMs: number;
  packets: number;
  heartbeats: number;
  /** Hellos the socket sent; a hello it could not send is in `hellosFailed` and `helloError`. */
  hellosSent: number;
  hellosFailed: number;
  /** Why the last hello could not be sent (`send ENETUNREACH 127.255.255.255:3014`), or null. */
  helloError: string | null;
  /** Datagrams dropped, by reason. */
  dropped: Record<string, number>;
}

/**
 * The status document (docs/OPERATIONS.md lists every field). Written by a server (HTTP, the
 * page) or by the status CLI, which is no server: it then has `hostname` '', `state`
 * `observer`, `master` and `eligible` false, `stats` and `lastFailover` null, and fills
 * `observer`.
 */
export interface StatusDocument {
  hostname: string;
  master: boolean;
  masterHostname: string;
  term: number;
  eligible: boolean;
  members: string[];
  /** hostname → record, as the component's `servers` (the CLI: each server still present, from its last heartbeat). */
  servers: Record<string, ServerRecord>;
  stats: object | null;
  /** The writer: `master`, `slave`, `listening` (knows no master), or `observer` (the CLI). */
  state: 'master' | 'slave' | 'listening' | 'observer';
  clusterId: string;
  tickMs: number;
  checkBeats: number;
  generatedAt: number;
  lastFailover: Failover | null;
  /** Each server present, sorted by hostname, with its state. */
  view: ServerView[];
  /** Servers that left in the last 5 minutes (and are not back), newest last. */
  departed: Departure[];
  /** Several servers claim master: their hostnames; [] otherwise. */
  conflict: string[];
  /**
   * This server's health check (multi.setHealthCheck, or the run wrapper's --health-cmd), in
   * full: null without one, and in the CLI's document. Every server's, as its heartbeats tell
   * it, is in its `view` row and its `servers` record.
   */
  health: HealthStatus | null;
  observer: ObserverReport | null;
}

export interface Departure {
  hostname: string;
  ip: string;
  /** Epoch ms when this server removed it. */
  leftAt: number;
  /** Epoch ms when it was last heard. */
  lastHeardAt: number;
  /** `shutdown`: removed before it could have timed out, so on its notice; `silent`: timed out. */
  reason: 'shutdown' | 'silent';
  data: unknown;
}

/** How long a departed server stays listed, and how many are kept. */
export const DEPARTURE_KEEP_MS = 5 * 60_000;
export const MAX_DEPARTURES = 64;

/**
 * Servers removed from the table lately, newest last; bounded in count and age, so a flood
 * of forged hostnames that come and go costs a fixed amount of memory.
 */
export class DepartureLog {
  #entries = new Map<string, Departure>();

  removed(record: ServerRecord, nowWall: number, tickMs: number, checkBeats: number): void {
    const lastHeardAt = record.now * 1000;
    const silentMs = nowWall - lastHeardAt;
    // Half a tick short of the dead deadline: a removal that early was not a timeout.
    const reason = silentMs < deadAfterMs(tickMs, checkBeats) - tickMs / 2 ? 'shutdown' : 'silent';
    this.#entries.delete(record.hostname);
    this.#entries.set(record.hostname, {
      hostname: record.hostname,
      ip: record.ip,
      leftAt: nowWall,
      lastHeardAt,
      reason,
      data: record.data,
    });
    while (this.#entries.size > MAX_DEPARTURES) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  returned(hostname: string): void {
    this.#entries.delete(hostname);
  }

  list(nowWall: number): Departure[] {
    for (const [hostname, entry] of this.#entries) {
      if (nowWall - entry.leftAt > DEPARTURE_KEEP_MS) this.#entries.delete(hostname);
    }
    return [...this.#entries.values()];
  }
}

/** This server's own state: it knows whom it follows. */
export function selfState(source: StatusSource): 'master' | 'slave' | 'listening' {
  return source.master ? 'master' : source.masterHostname ? 'slave' : 'listening';
}

export function statusBody(
  source: StatusSource,
  history: { departures: DepartureLog | null; failovers: FailoverClock | null },
  nowWall: number,
): StatusDocument {
  const { departures, failovers } = history;
  const tickMs = (source.settings?.heartbeat_freq ?? 20) * 1000;
  const checkBeats = source.settings?.check_beats ?? 3;
  const records = Object.values(source.servers).sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  const states = judge(
    records.map((r) => ({
      claimsMaster: r.master,
      term: r.term,
      silentMs: r.self ? 0 : Math.max(0, nowWall - r.now * 1000),
      tickMs,
      checkBeats,
      departed: false,
    })),
  );
  const view: ServerView[] = records.map((r, i) => ({
    hostname: r.hostname,
    ip: r.ip,
    // Our own row is what we know, not what a peer could infer from our heartbeat.
    state: r.self ? selfState(source) : (states[i] as ServerState),
    claimsMaster: r.master,
    eligible: r.eligible,
    self: r.self,
    locked: r.locked,
    term: r.term,
    priority: r.priority,
    lastHeardMs: r.self ? 0 : Math.max(0, Math.round(nowWall - r.now * 1000)),
    uptime: r.uptime,
    tickMs,
    checkBeats,
    health: r.health ? { ...r.health } : null,
  }));
  return {
    hostname: source.hostname,
    master: source.master,
    masterHostname: source.masterHostname,
    term: source.term,
    eligible: source.eligible,
    members: source.members,
    servers: { ...source.servers },
    stats: source.stats,
    state: selfState(source),
    clusterId: source.settings?.cluster_id ?? '',
    tickMs,
    checkBeats,
    generatedAt: nowWall,
    lastFailover: failovers?.last ?? null,
    view,
    departed: departures ? departures.list(nowWall).filter((d) => !(d.hostname in source.servers)) : [],
    conflict: masterOf(view).conflict,
    health: source.health ? { ...source.health, last: source.health.last ? { ...source.health.last } : null } : null,
    observer: null,
  };
}
