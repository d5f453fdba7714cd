/**
 * A private network namespace for tests that loopback cannot serve: IPv6 multicast is
 * never delivered on `lo` (not even with its MULTICAST flag set and a route), so the
 * namespace gets a veth pair whose two ends both stay inside it. Nothing in it is linked
 * to any other namespace: its packets cannot leave, whatever they are.
 *
 * Needs root and `ip` (iproute2); `createNetns` says why it cannot, so the test can skip.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Netns {
  name: string;
  /** Run a command inside: prefix it with this (`ip netns exec <name>`). */
  launcher: string[];
  /** The veth end that carries multicast, and its IPv6 address (no DAD wait: `nodad`). */
  interface: string;
  address: string;
  /** Delete the namespace and everything in it; safe to call twice. */
  remove(): void;
}

const PREFIX = 'psm-test-';
const IFACE = 'psm0';
const PEER = 'psm1';
/** A unique-local address: not routable anywhere, and there is nowhere to route it anyway. */
const ADDRESS = 'fd00:3014::1';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

/** A fresh namespace ready for IPv6 multicast, or the reason there is none. */
export function createNetns(): Netns | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'network namespaces are Linux only' };
  if (process.getuid?.() !== 0) return { skip: 'creating a network namespace needs root' };
  sweepOrphans();
  const name = `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', name);
  } catch (err) {
    return { skip: `cannot create a network namespace (ip netns add): ${firstLine(err)}` };
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.removeListener('exit', remove);
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  };
  // A test run that dies before its cleanup still leaves nothing behind.
  process.on('exit', remove);
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', PEER);
    ip('-n', name, 'link', 'set', IFACE, 'up');
    ip('-n', name, 'link', 'set', PEER, 'up');
    ip('-n', name, '-6', 'addr', 'add', `${ADDRESS}/64`, 'dev', IFACE, 'nodad');
  } catch (err) {
    remove();
    return { skip: `cannot set up the namespace's interfaces: ${firstLine(err)}` };
  }
  return { name, launcher: ['ip', 'netns', 'exec', name], interface: IFACE, address: ADDRESS, remove };
}

/** Namespaces left by a test run that was killed (its pid is gone): ours by name, so ours to delete. */
function sweepOrphans(): void {
  let listing = '';
  try {
    listing = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return;
  }
  for (const line of listing.split('\n')) {
    const match = new RegExp(`^(${PREFIX}(\\d+)-[0-9a-f]+)\\b`).exec(line);
    if (!match || isAlive(Number(match[2]))) continue;
    try {
      ip('netns', 'del', match[1] as string);
    } catch {
      // someone else got there first
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || (err as Error).message).split('\n')[0] ?? '';
}
