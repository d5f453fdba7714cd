/**
 * The core's modules, made and wired to one another from the options: which module hears of
 * which is decided here once, so `election.ts` routes inputs and none of it builds anything.
 */
import { healthOf, type ServerRecord } from '../elector/types';
import { PromoteHold } from '../elector/hold';
import { Preemption } from '../elector/preempt';
import { MembersReport } from '../elector/members-report';
import { Announcer } from './announce';
import { FreshnessGuard } from './freshness';
import { Handoffs } from './handoff';
import { Inbox } from './inbox';
import { Instances } from './instances';
import { MemberTable } from './members';
import { Quorum } from './quorum';
import { Relays } from './relays';
import { Words } from './words';
import { Roles, type RolesParts } from './roles';
import { Step } from './step';
import { Timing } from './timing';
import { DEFAULT_MAX_SERVERS, type CoreOptions } from './options';

export interface CoreParts extends RolesParts {
  maxServers: number;
  clusterId: string;
  /** A promote request held while the app drains its master work (hold.ts). */
  hold: PromoteHold;
  /** Preemption, off unless configured (preempt.ts). */
  preempt: Preemption;
  roles: Roles;
  inbox: Inbox;
  membersReport: MembersReport;
}

export function assemble(options: CoreOptions): CoreParts {
  const maxServers = options.maxServers ?? DEFAULT_MAX_SERVERS;
  const clusterId = options.clusterId ?? '';
  const timing = new Timing(options);
  const step = new Step();
  // Room for every server twice over (restarts, duplicates) before the least recently
  // heard instance is forgotten; a forgotten live instance simply proves itself again.
  const guard = options.verifyInstances ? new FreshnessGuard({ selfIid: options.instanceId, capacity: 2 * maxServers + 64 }) : null;
  const relays = new Relays();
  const members = new MemberTable(timing, step, maxServers, relays);
  const self = {
    hostname: options.hostname,
    instanceId: options.instanceId,
    ip: options.ip,
    pid: options.pid,
    authenticated: guard !== null,
  };
  const instances = new Instances(self, timing, step, members);
  const quorum = new Quorum(options.quorum ?? 0, members);
  const handoffs = new Handoffs(step, () => timing.tockMs);
  const preempt = new Preemption({ delayMs: options.preemptDelayMs ?? null });
  const hold = new PromoteHold(
    { event: (event) => step.event(event), log: (level, message) => step.log(level, message) },
    options.drainMs ?? null,
  );
  // The announcer sends our heartbeat through the roles, made after it (they send through it).
  const made: { roles?: Roles } = {};
  const announcer = new Announcer(
    { ...self, clusterId },
    timing,
    step,
    guard,
    (now) => made.roles?.sendHeartbeat(now),
    () => members.fastestTick(),
  );
  const priority = options.priority ?? 0;
  const record: ServerRecord = {
    hostname: options.hostname,
    ip: options.ip,
    master: false,
    eligible: options.eligible ?? true,
    self: true,
    now: 0,
    data: options.data ?? {},
    uptime: 0,
    locked: false,
    priority,
    term: 0,
    health: healthOf(options.health),
  };
  const roleOptions = {
    hostname: options.hostname,
    ip: options.ip,
    instanceId: options.instanceId,
    pid: options.pid,
    priority,
    exitOnConflict: options.exitOnConflict ?? false,
  };
  const words = new Words(options.hostname, relays, members, timing);
  const shared = { timing, step, members, instances, quorum, handoffs, announcer, guard, relays, words, hold };
  const roles = (made.roles = new Roles(roleOptions, record, shared));
  const inbox = new Inbox({ hostname: options.hostname, instanceId: options.instanceId, maxServers }, { ...shared, roles });
  return { ...shared, maxServers, clusterId, preempt, roles, inbox, membersReport: new MembersReport() };
}
