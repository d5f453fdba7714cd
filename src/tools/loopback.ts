/**
 * The network rule for everything we run ourselves (tests, demo, bench): packets stay on
 * this machine. A cluster may only be started with a loopback broadcast address.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as dgram from 'node:dgram';

export function isLoopback(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith('127.');
  if (isIPv6(ip)) return ip === '::1';
  return false;
}

/** Throws unless `ip` is a loopback address (127.0.0.0/8 or ::1). */
export function assertLoopback(ip: unknown, what = 'broadcast_ip'): void {
  if (typeof ip !== 'string' || !isLoopback(ip)) {
    throw new Error(`Refusing to start a test cluster with ${what} ${JSON.stringify(ip)}: only loopback (127.0.0.0/8) keeps packets on this machine`);
  }
}

/**
 * A UDP port nobody here is using right now. Clusters sharing a port would merge
 * (sockets bind with address reuse), so every test cluster gets its own.
 */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}
