/**
 * What the `status` CLI (src/cli.ts) hears: an observer bound to the cluster's port (address
 * reuse, so it runs beside a server on the same host) that asks who is there with a `hello`
 * and keeps every heartbeat it hears, per hostname, bounded; and the status document it
 * makes of them (the schema of a server's status route, shell/status.ts). It never sends a
 * heartbeat, so it is never counted as a server.
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { HeartbeatMessage, Message } from '../protocol/messages';
import { healthOf, type ServerRecord } from '../elector/types';
import type { Keyring } from '../wire/auth';
import { MAX_UDP_PAYLOAD } from '../protocol/limits';
import { decodeWire, encode } from '../wire/codec';
import { deadAfterMs, judge, masterOf, type ServerState } from './view';
import type { Departure, ServerView, StatusDocument } from './status';

export interface ObserveOptions {
  port: number;
  broadcastIp: string;
  bindIp: string;
  multicastGroup: string | null;
  /** The IP version of the socket (of bindIp and the group). */
  family: 4 | 6;
  keyring: Keyring | null;
  clusterId: string;
  /** Assumed for servers whose heartbeats do not carry their timing. */
  tickMs: number;
  checkBeats: number;
}

/** Servers remembered; beyond it, new hostnames are ignored (forged ones could be endless). */
const MAX_OBSERVED = 4096;
/** How long a server that left stays in the table, marked. */
export const LEFT_SHOWN_MS = 5 * 60_000;

interface Seen {
  message: HeartbeatMessage;
  /** When its last heartbeat was heard: monotonic ms, and the wall clock then (a record's `now`). */
  heardAt: number;
  heardAtWall: number;
  address: string;
  /** When its shutdown notice arrived, if one did. */
  departedAt: number | null;
}

/** Everything heard so far, per hostname. */
export class Observer {
  readonly socket: dgram.Socket;
  readonly startedAt = performance.now();
  /** Random per run: authenticated servers require an instance id and a sequence on every packet. */
  readonly iid = randomBytes(8).toString('hex');
  /** Where hellos go (without a multicast group). */
  get broadcastIp(): string {
    return this.#options.broadcastIp;
  }
  readonly hostname = `psm-status-${randomBytes(3).toString('hex')}`;
  #seq = 0;
  #servers = new Map<string, Seen>();
  #packets = 0;
  #heartbeats = 0;
  #hellos = 0;
  #hellosFailed = 0;
  #helloError: string | null = null;
  #dropped: Record<string, number> = {};
  #options: ObserveOptions;
  /** Told of each hello the socket could not send (the CLI says so on stderr). */
  onHelloError: ((err: Error) => void) | null = null;

  constructor(options: ObserveOptions) {
    this.#options = options;
    this.socket = dgram.createSocket({ type: options.family === 6 ? 'udp6' : 'udp4', reuseAddr: true });
    this.socket.on('message', (datagram, rinfo) => this.#receive(datagram, rinfo.address));
  }

  open(): Promise<void> {
    const { port, bindIp, multicastGroup } = this.#options;
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ port, address: bindIp }, () => {
        this.socket.removeListener('error', reject);
        // Later socket errors (a send to an unreachable address) must not kill the CLI.
        this.socket.on('error', () => undefined);
        try {
          if (this.#options.family === 4) this.socket.setBroadcast(true);
          if (multicastGroup) this.socket.addMembership(multicastGroup);
        } catch (err) {
          reject(err as Error);
          return;
        }
        resolve();
      });
    });
  }

  /**
   * Ask every server to answer now. Counted as sent only once the socket says so: a hello the
   * network refuses (no route: ENETUNREACH) is an error, not a hello sent.
   */
  hello(): void {
    const message: Message = { action: 'hello', hostname: this.hostname, iid: this.iid, seq: ++this.#seq };
    if (this.#options.clusterId) message.cid = this.#options.clusterId;
    const to = this.#options.multicastGroup ?? this.#options.broadcastIp;
    const done = (err: Error | null): void => {
      if (!err) {
        this.#hellos++;
        return;
      }
      this.#hellosFailed++;
      this.#helloError = err.message;
      this.onHelloError?.(err);
    };
    try {
      this.socket.send(encode(message, this.#options.keyring), this.#options.port, to, done);
    } catch (err) {
      done(err as Error);
    }
  }

  /** Hellos that could not be sent so far. */
  get hellosFailed(): number {
    return this.#hellosFailed;
  }

  #receive(datagram: Buffer, address: string): void {
    this.#packets++;
    const result = decodeWire(datagram, { maxBytes: MAX_UDP_PAYLOAD, keyring: this.#options.keyring });
    if (!result.ok) {
      this.#dropped[result.reason] = (this.#dropped[result.reason] ?? 0) + 1;
      return;
    }
    if ('gossip' in result) return;
    const message = result.message;
    if ((message.cid ?? '') !== this.#options.clusterId) return;
    const now = performance.now();
    const seen = this.#servers.get(message.hostname);
    if (message.action === 'shutdown') {
      // Only the instance we list can announce its own departure.
      if (seen && seen.departedAt === null && (message.iid === undefined || message.iid === seen.message.iid)) seen.departedAt = now;
      return;
    }
    if (message.action !== 'heartbeat') return;
    this.#heartbeats++;
    if (seen && message.iid !== undefined && message.iid === seen.message.iid && (message.seq ?? 0) <= (seen.message.seq ?? 0)) {
      return; // overtaken by a newer packet of the same instance (or sent before its shutdown)
    }
    if (!seen && this.#servers.size >= MAX_OBSERVED && !this.#forgetOne(now)) return;
    this.#servers.set(message.hostname, { message, heardAt: now, heardAtWall: Date.now(), address, departedAt: null });
  }

  /** Make room by forgetting a server that left, if one did. */
  #forgetOne(now: number): boolean {
    for (const [hostname, seen] of this.#servers) {
      if (this.#leftAt(seen) <= now) {
        this.#servers.delete(hostname);
        return true;
      }
    }
    return false;
  }

  #timing(m: HeartbeatMessage): { tickMs: number; checkBeats: number } {
    return { tickMs: m.tick ?? this.#options.tickMs, checkBeats: m.beats ?? this.#options.checkBeats };
  }

  /** When it left (its notice, or the end of its tock), as this observer judges it. */
  #leftAt(seen: Seen): number {
    const { tickMs, checkBeats } = this.#timing(seen.message);
    return seen.departedAt ?? seen.heardAt + deadAfterMs(tickMs, checkBeats);
  }

  /** The status document of what was heard, as an observer writes it (one schema with a server's). */
  snapshot(): StatusDocument {
    const now = performance.now();
    const wall = Date.now();
    const rows: Array<{ hostname: string; seen: Seen }> = [];
    for (const [hostname, seen] of this.#servers) {
      if (now - this.#leftAt(seen) > LEFT_SHOWN_MS) {
        this.#servers.delete(hostname);
        continue;
      }
      rows.push({ hostname, seen });
    }
    rows.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
    const states = judge(
      rows.map(({ seen }) => ({
        claimsMaster: seen.message.master,
        term: seen.message.term ?? 0,
        silentMs: now - seen.heardAt,
        ...this.#timing(seen.message),
        departed: seen.departedAt !== null,
      })),
    );
    const servers = Object.create(null) as Record<string, ServerRecord>;
    const view: ServerView[] = [];
    const departed: Departure[] = [];
    rows.forEach(({ hostname, seen }, i) => {
      const m = seen.message;
      const state = states[i] as ServerState;
      // The heartbeat's ip, or where its datagrams come from when it sends none (the original may send '').
      const ip = m.ip || seen.address;
      if (state === 'left') {
        const leftAt = wall - (now - this.#leftAt(seen));
        departed.push({
          hostname,
          ip,
          leftAt: Math.round(leftAt),
          lastHeardAt: Math.round(seen.heardAtWall),
          reason: seen.departedAt !== null ? 'shutdown' : 'silent',
          data: m.data,
        });
        return;
      }
      servers[hostname] = {
        hostname,
        ip,
        master: m.master,
        eligible: m.eligible,
        self: false,
        now: seen.heardAtWall / 1000,
        data: m.data,
        uptime: m.uptime,
        locked: false,
        priority: m.prio ?? 0,
        term: m.term ?? 0,
        health: healthOf(m.health),
      };
      view.push({
        hostname,
        ip,
        state,
        claimsMaster: m.master,
        eligible: m.eligible,
        self: false,
        locked: false,
        term: m.term ?? 0,
        priority: m.prio ?? 0,
        lastHeardMs: Math.max(0, Math.round(now - seen.heardAt)),
        uptime: m.uptime,
        ...this.#timing(m),
        health: healthOf(m.health),
      });
    });
    departed.sort((a, b) => a.leftAt - b.leftAt);
    const master = masterOf(view);
    return {
      hostname: '',
      master: false,
      masterHostname: master.hostname,
      term: view.reduce((max, s) => Math.max(max, s.term), 0),
      eligible: false,
      members: view.filter((s) => s.eligible).map((s) => s.hostname),
      servers,
      stats: null,
      state: 'observer',
      clusterId: this.#options.clusterId,
      tickMs: this.#options.tickMs,
      checkBeats: this.#options.checkBeats,
      generatedAt: wall,
      lastFailover: null,
      view,
      departed,
      conflict: master.conflict,
      health: null,
      observer: {
        port: this.#options.port,
        listenedMs: Math.round(now - this.startedAt),
        packets: this.#packets,
        heartbeats: this.#heartbeats,
        hellosSent: this.#hellos,
        hellosFailed: this.#hellosFailed,
        helloError: this.#helloError,
        dropped: { ...this.#dropped },
      },
    };
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Remote text for a terminal: JSON already escapes C0 controls; C1 controls (an 8-bit CSI
 * can start an escape sequence) and bidirectional overrides (which reorder what is shown)
 * are escaped too.
 */
