/**
 * Messages between servers, as the application sees them: `send()` (at most once, one
 * datagram), `request()` (a send whose receiver answers through the `reply` argument of its
 * listener), and the delivery of what arrives: a reply settles its request, anything else is
 * a `message` event. The election carries the datagrams (its Output), this module the rest.
 */
import { randomBytes } from 'node:crypto';
import type { JsonValue } from '../protocol/messages';
import { MESSAGE_TYPE_PATTERN } from '../protocol/limits';
import type { Driver } from '../driver/driver';
import type { Elector } from '../elector/elector';
import type { Reply } from '../driver/events';
import { describeValue, jsonProblem } from './json';

/** Requests awaiting replies; a bound so a caller in a loop cannot grow memory without end. */
const MAX_PENDING_REQUESTS = 10_000;
/** setTimeout's limit: a longer delay fires at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A message as the election delivers it. */
export interface Delivered {
  from: string;
  messageType: string;
  payload: JsonValue;
  rid?: string;
  re?: string;
}

export interface MessagingHost {
  hostname(): string;
  /** The running driver, or null when not running (not started, or shut down). */
  driver(): Driver<Elector> | null;
  requestTimeoutMs(): number;
  maxPacketBytes(): number;
  /** A `message` event, on the component and on the server. */
  emit(messageType: string, payload: JsonValue, from: string, reply: Reply | undefined): void;
}

export class Messaging {
  readonly #host: MessagingHost;
  #requests = new Map<string, { resolve: (payload: JsonValue) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; to: string }>();
  #requestCounter = 0;

  constructor(host: MessagingHost) {
    this.#host = host;
  }

  send(target: string, type: string, payload: JsonValue): void {
    this.#send(target, type, payload, {});
  }

  request(target: string, type: string, payload: JsonValue, options: { timeoutMs?: number } = {}): Promise<JsonValue> {
    const timeoutMs = options.timeoutMs ?? this.#host.requestTimeoutMs();
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      return Promise.reject(
        new RangeError(`request timeoutMs must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${describeValue(timeoutMs)}`),
      );
    }
    if (this.#requests.size >= MAX_PENDING_REQUESTS)
      return Promise.reject(new Error(`too many requests in flight (${MAX_PENDING_REQUESTS})`));
    const rid = `${(++this.#requestCounter).toString(36)}${randomBytes(4).toString('hex')}`;
    return new Promise((resolve, reject) => {
      let to: string;
      try {
        to = this.#send(target, type, payload, { rid });
      } catch (err) {
        reject(err as Error);
        return;
      }
      const timer = setTimeout(() => {
        this.#requests.delete(rid);
        reject(new Error(`request "${type}" to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#requests.set(rid, { resolve, reject, timer, to });
    });
  }

  /** A message for us arrived: a reply settles its request (if from whom it was asked), anything else is an event. */
  deliver(message: Delivered): void {
    if (message.re !== undefined) {
      const pending = this.#requests.get(message.re);
      if (!pending || (pending.to !== message.from && pending.to !== '*')) return; // late, unknown or forged reply
      this.#requests.delete(message.re);
      clearTimeout(pending.timer);
      pending.resolve(message.payload);
      return;
    }
    let reply: Reply | undefined;
    if (message.rid !== undefined) {
      const rid = message.rid;
      let replied = false;
      reply = (payload: JsonValue) => {
        if (replied) return;
        replied = true;
        this.#send(message.from, message.messageType, payload, { re: rid });
      };
    }
    this.#host.emit(message.messageType, message.payload, message.from, reply);
  }

  /** Shutting down: every request in flight fails now. */
  rejectAll(err: () => Error): void {
    for (const [rid, pending] of this.#requests) {
      clearTimeout(pending.timer);
      pending.reject(err());
      this.#requests.delete(rid);
    }
  }

  /** Check, copy and hand one message to the election; returns the hostname it goes to. */
  #send(target: string, type: string, payload: JsonValue, ids: { rid?: string; re?: string }): string {
    const driver = this.#host.driver();
    if (!driver) throw new Error('MultiServer is not running');
    if (typeof type !== 'string' || !MESSAGE_TYPE_PATTERN.test(type)) {
      throw new TypeError(`message type must be 1 to 64 letters, digits, ".", "_", ":" or "-", got ${describeValue(type)}`);
    }
    const text = jsonProblem(payload, 'message payload');
    const core = driver.core;
    let to = target;
    if (target === 'master') {
      to = core.masterHostname;
      if (!to) throw new Error('there is no master to send to');
    } else if (typeof target !== 'string' || (target !== '*' && !core.record(target))) {
      throw new Error(`unknown server ${describeValue(target)}`);
    }
    const size = Buffer.byteLength(text, 'utf8');
    const limit = this.#host.maxPacketBytes();
    if (size + 256 > limit)
      throw new RangeError(`message payload is ${size} bytes; with its envelope it must fit max_packet_bytes (${limit})`);
    // What the receiver gets: the payload as JSON sees it (a Date becomes a string, and so on).
    const copy = JSON.parse(text) as JsonValue;
    const hostname = this.#host.hostname();
    if (to === hostname) {
      // To ourselves (e.g. 'master' on the master): no network, same event, next turn.
      setImmediate(() => this.deliver({ from: hostname, messageType: type, payload: copy, ...ids }));
      return to;
    }
    driver.run((c, now) => c.sendMessage(to, type, copy, now, ids));
    return to;
  }
}
