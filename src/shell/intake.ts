/**
 * Datagram intake: what the shell does with every datagram the transport hands it, before the
 * election sees it. Our own looped-back heartbeat stops here; the rest is decoded (the MAC
 * first, with a secret), a bad one dropped with a rate-limited line, peer gossip handed to the
 * transport, and a valid message queued on the driver. What the election says of it (a drop
 * reason) is counted, and a valid heartbeat makes its sender a unicast destination.
 */
import { performance } from 'node:perf_hooks';
import type { Address } from '../protocol/messages';
import type { Driver } from '../driver/driver';
import type { Elector } from '../elector/elector';
import type { Transport } from '../transport/types';
import type { Keyring } from '../wire/auth';
import { decodeWire } from '../wire/codec';
import type { ShellCounters } from './stats';

export interface IntakeHost {
  /** The running driver, or null (not started, or shut down: the datagram is ignored). */
  driver(): Driver<Elector> | null;
  transport(): Transport | null;
  keyring(): Keyring | null;
  /** The settings in force (a reload replaces them), null before startup. */
  settings(): { readonly max_packet_bytes: number; readonly max_data_bytes: number } | null;
  readonly counters: ShellCounters;
}

export class DatagramIntake {
  readonly #host: IntakeHost;
  /** The last heartbeat we sent to everyone (broadcast and multicast loop it back to us). */
  ownHeartbeat: Buffer | null = null;
  /** The wake-up time the last step asked for: a datagram read later than it may follow a stall. */
  wakeAsked = -Infinity;

  constructor(host: IntakeHost) {
    this.#host = host;
  }

  receive(datagram: Buffer, from: Address): void {
    const driver = this.#host.driver();
    if (!driver) return;
    driver.stats.packetsIn++;
    driver.stats.bytesIn += datagram.length;
    // Our last heartbeat, looped back by broadcast or multicast: the core ignores it (it
    // carries our instance id) unless it comes after a stall, which the core alone judges, so
    // it gets it then. Otherwise it goes no further: a third of an idle server's datagrams,
    // each a decode and a step of the core for nothing (docs/PERFORMANCE.md, idle cost).
    const own = this.ownHeartbeat;
    if (own !== null && datagram.length === own.length && performance.now() <= this.wakeAsked && datagram.equals(own)) return;
    const settings = this.#host.settings();
    const result = decodeWire(datagram, {
      maxBytes: settings?.max_packet_bytes,
      maxDataBytes: settings?.max_data_bytes,
      keyring: this.#host.keyring(),
    });
    const counters = this.#host.counters;
    if (!result.ok) {
      counters.drop(result.reason);
      if (result.reason === 'unknown-action') {
        // Newer servers may speak actions we do not; that is not an attack.
        driver.logRemote(9, 'unknown-action', `Ignoring unknown action "${result.detail}" from ${from.address}`);
        return;
      }
      driver.logRemote(
        3,
        `dropped:${result.reason}`,
        `Dropped datagram from ${from.address}:${from.port}: ${result.reason} (${result.detail})`,
      );
      return;
    }
    if (result.keyIndex) counters.oldKeyPackets++;
    if ('gossip' in result) {
      // Transport business (unicast peer addresses): it never reaches the core.
      driver.logRemote(10, 'gossip', `Received peer addresses from ${result.gossip.hostname} (${from.address})`);
      this.#host.transport()?.gossip?.(from, result.gossip.addrs);
      return;
    }
    const message = result.message;
    driver.receive(message, from, (out) => {
      if (out.dropped) counters.drop(out.dropped);
      // Only a valid (with a secret: authenticated) heartbeat makes its sender a unicast
      // destination, never a hello or garbage; nor a stale one, which is a replay or a late copy.
      // An instance not yet verified is learned: the challenge that admits it must reach it.
      if (message.action === 'heartbeat' && out.dropped !== 'stale') this.#host.transport()?.learn?.(from);
    });
  }
}
