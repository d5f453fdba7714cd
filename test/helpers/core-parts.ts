/**
 * The UDP core's parts wired as the facade wires them (src/core/election.ts), without the
 * facade or Roles: for unit tests of one core module driven with explicit instants.
 */
import { Announcer } from '../../src/core/announce';
import { Handoffs } from '../../src/core/handoff';
import { Instances } from '../../src/core/instances';
import { MemberTable } from '../../src/core/members';
import { Quorum } from '../../src/core/quorum';
import { Relays } from '../../src/core/relays';
import { Step } from '../../src/core/step';
import { Timing } from '../../src/core/timing';
import { Words } from '../../src/core/words';
import type { Instant } from '../../src/elector/types';
import type { HeartbeatMessage } from '../../src/protocol/messages';

export const TICK = 1000;
export const TOCK = 3000;

export const at = (mono: number): Instant => ({ mono, wall: 1_700_000_000_000 + mono });

export function coreParts(hostname = 'self', quorum = 0) {
  const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
  const step = new Step();
  const relays = new Relays();
  const members = new MemberTable(timing, step, 64, relays);
  const self = { hostname, instanceId: `iid-${hostname}`, ip: '127.0.0.1', authenticated: false };
  const instances = new Instances(self, timing, step, members);
  const handoffs = new Handoffs(step, () => timing.tockMs);
  const words = new Words(hostname, relays, members, timing);
  const announcer = new Announcer(
    { ...self, clusterId: '' },
    timing,
    step,
    null,
    () => {},
    () => members.fastestTick(),
  );
  return { timing, step, relays, members, instances, quorum: new Quorum(quorum, members), handoffs, words, announcer, guard: null };
}

export type CoreParts = ReturnType<typeof coreParts>;

/** `hostname`'s heartbeat, heard at `heardAt` (now, unless earlier): added to the table or followed. */
export function hear(parts: CoreParts, hostname: string, now: Instant, fields: Partial<HeartbeatMessage> = {}, heardAt = now.mono): void {
  const message: HeartbeatMessage = {
    action: 'heartbeat',
    hostname,
    ip: '127.0.0.1',
    master: false,
    eligible: true,
    uptime: 0,
    data: {},
    iid: `iid-${hostname}`,
    ...fields,
  };
  const peer = parts.members.get(hostname);
  if (peer) parts.members.follow(peer, message, '127.0.0.1', heardAt, now);
  else parts.members.add(message, '127.0.0.1', now);
}
