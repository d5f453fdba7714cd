/**
 * Interaction scripts, as etcd-io/raft's testdata/*.txt (its `datadriven` format): each
 * command, then `----`, then the timeline lines that command produced (or `ok`), then a blank
 * line. A file reads as a story told step by step: what happens, and right under it what
 * every server did about it, to the tenth of a millisecond. A change in behaviour shows as a
 * diff of that story, at the step where it changed.
 *
 *   # comment (kept as written; a file opens with what its story shows and the SPEC section)
 *   cluster [mode=udp|etcd] tick=1000 beats=3 latency=1 [jitter=0] [quorum=3] [secret=...]
 *   start a b c [at=250]       servers (started now, or at a time in ms)
 *   run 4000                   advance simulated time by ms
 *   crash a | shutdown a | restart a
 *   stepdown a | promote b | eligible a false
 *
 * UDP mode only (the datagram network):
 *   stall a 5000               a's timers and socket held back (CPU starvation)
 *   partition a,b | c,d,e | heal
 *   cut a-b [c-d]              a and b stop hearing each other (both ways); the others hear all
 *   reload a 100 1             a's heartbeat_freq (ms) and check_beats change by a config reload
 *   duplicate a                a second process calling itself a
 *
 * etcd mode only (the simulated lease store, sim/lease-store.ts):
 *   freeze a 5000              SIGSTOP for ms: nothing of a runs, its inputs wait
 *   priority a 5
 *   store down | store up | store election 3000 | store stall 2000
 *   unlink a | relink a        a's link to the store is cut / healed
 *
 * Left out of the output, as noise: `event members` (it follows every join, removal and
 * change of a server's data, right under the log line that already says what changed; the
 * members report itself is tested in test/events.test.ts), and in the etcd mode `event
 * addserver X` and `event masterchange X`, which come right under "Server joined the
 * cluster: X" and "The master server is now: X" (the UDP simulator's trace leaves them out
 * already). Kept: `event masterchange ''` (no log line says the master is gone),
 * `deleteserver`, the log lines an operator reads (level 6 and below) and every other event
 * the app receives.
 */
import { SimCluster, type SimClusterOptions } from './cluster';
import { LeaseSimCluster, type LeaseSimOptions } from './lease-cluster';

/** One command of a script, with the comment lines above it and the output recorded under it. */
export interface Step {
  comments: string[];
  command: string;
  /** The recorded output (null: none recorded yet, a new command). */
  expected: string[] | null;
}

export interface Interaction {
  steps: Step[];
  /** Comment lines after the last command. */
  trailer: string[];
}

const SEPARATOR = '----';
const NO_OUTPUT = 'ok';

export function parseInteraction(text: string): Interaction {
  const lines = text.split('\n');
  const steps: Step[] = [];
  let comments: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '' || line.trimStart().startsWith('#')) {
      if (line.trim() !== '') comments.push(line);
      continue;
    }
    const step: Step = { comments, command: line.trim(), expected: null };
    comments = [];
    if (lines[i + 1]?.trim() === SEPARATOR) {
      const expected: string[] = [];
      for (i += 2; i < lines.length && lines[i] !== ''; i++) expected.push(lines[i] as string);
      step.expected = expected.length === 1 && expected[0] === NO_OUTPUT ? [] : expected;
    }
    steps.push(step);
  }
  return { steps, trailer: comments };
}

export function formatInteraction(interaction: Interaction, outputs: string[][]): string {
  const out: string[] = [];
  interaction.steps.forEach((step, index) => {
    const output = outputs[index] ?? [];
    out.push(...step.comments, step.command, SEPARATOR, ...(output.length > 0 ? output : [NO_OUTPUT]), '');
  });
  out.push(...interaction.trailer);
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

/** Play a script; returns, per command, the timeline lines it produced (noise left out). */
export function playInteraction(commands: string[]): string[][] {
  let player: Player | null = null;
  return commands.map((command) => {
    const { verb, names, options } = parse(command);
    if (verb === 'cluster') {
      player = options.mode === 'etcd' ? etcdPlayer(options) : udpPlayer(options);
      return [];
    }
    if (!player) throw new Error('the script must start with a "cluster" line');
    const timeline = player.timeline;
    const from = timeline.length;
    const act = player.commands[verb];
    if (!act) throw new Error(`unknown command "${verb}" in ${player.mode} mode: ${command}`);
    act(names, options, command);
    return timeline.slice(from).filter((line) => !isNoise(line));
  });
}

function isNoise(line: string): boolean {
  return line.endsWith(' event members') || / event (addserver \S+|masterchange [^' ]+)$/.test(line);
}

type Options = Record<string, string>;
type Command = (names: string[], options: Options, line: string) => void;

interface Player {
  mode: string;
  timeline: string[];
  commands: Record<string, Command>;
}

function parse(line: string): { verb: string; names: string[]; options: Options } {
  const [verb = '', ...args] = line.split(/\s+/);
  const options = Object.fromEntries(args.filter((arg) => arg.includes('=')).map((arg) => arg.split('=') as [string, string]));
  return { verb, names: args.filter((arg) => !arg.includes('=')), options };
}

/** What every mode's cluster offers a script. */
interface Cluster {
  timeline: string[];
  runFor(ms: number): void;
  crash(id: string): void;
  shutdown(id: string): void;
  stepDown(id: string): void;
  promote(id: string): void;
  setEligible(id: string, eligible: boolean): void;
  restart(id: string): void;
}

/** A mode's player: the commands every mode has, and its own. */
function player(mode: string, sim: Cluster, start: (name: string, at: number | undefined) => void, own: Record<string, Command>): Player {
  const each = (act: (name: string) => void) => (names: string[]) => names.forEach(act);
  const common: Record<string, Command> = {
    start: (names, options) => names.forEach((name) => start(name, options.at === undefined ? undefined : Number(options.at))),
    run: (names) => sim.runFor(Number(names[0])),
    crash: each((name) => sim.crash(name)),
    shutdown: each((name) => sim.shutdown(name)),
    restart: each((name) => sim.restart(name)),
    stepdown: (names) => sim.stepDown(names[0] as string),
    promote: (names) => sim.promote(names[0] as string),
    eligible: (names) => sim.setEligible(names[0] as string, names[1] !== 'false'),
  };
  return { mode, timeline: sim.timeline, commands: { ...common, ...own } };
}

/** What the `cluster` line sets in either mode: one seed, the timing, a trace of what an operator reads. */
function timing(options: Options): { seed: number; tickMs: number; checkBeats: number; trace: true; traceLevel: number } {
  return { seed: 1, tickMs: Number(options.tick ?? 1000), checkBeats: Number(options.beats ?? 3), trace: true, traceLevel: 6 };
}

function udpPlayer(options: Options): Player {
  const config: SimClusterOptions = {
    ...timing(options),
    latencyMs: Number(options.latency ?? 1),
    jitterMs: Number(options.jitter ?? 0),
  };
  if (options.secret) config.secret = options.secret;
  const sim = new SimCluster(config);
  const quorum = options.quorum === undefined ? {} : { quorum: Number(options.quorum) };
  const start = (name: string, at: number | undefined): void => void sim.add(name, { ...(at === undefined ? {} : { at }), ...quorum });
  return player('udp', sim, start, {
    stall: (names) => sim.stall(names[0] as string, Number(names[1])),
    partition: (_names, _options, line) =>
      sim.partition(
        line
          .slice('partition'.length)
          .split('|')
          .map((group) =>
            group
              .split(',')
              .map((name) => name.trim())
              .filter(Boolean),
          ),
      ),
    heal: () => sim.heal(),
    cut: (names) => sim.cut(names.map((pair) => pair.split('-') as [string, string])),
    reload: (names) => sim.setNodeTiming(names[0] as string, Number(names[1]), Number(names[2])),
    duplicate: (names) => void sim.addDuplicate(names[0] as string, quorum),
  });
}

function etcdPlayer(options: Options): Player {
  const config: LeaseSimOptions = {
    ...timing(options),
    minDelayMs: Number(options.latency ?? 1),
    maxDelayMs: Number(options.latency ?? 1) + Number(options.jitter ?? 0),
  };
  if (options.ttl) config.ttlSeconds = Number(options.ttl);
  const sim = new LeaseSimCluster(config);
  const start = (name: string, at: number | undefined): void => void sim.add(name, at === undefined ? {} : { at });
  return player('etcd', sim, start, {
    freeze: (names) => sim.freeze(names[0] as string, Number(names[1])),
    priority: (names) => sim.setPriority(names[0] as string, Number(names[1])),
    store: (names) => {
      const [what, ms] = names;
      if (what === 'down') sim.storeDown();
      else if (what === 'up') sim.storeUp();
      else if (what === 'election') sim.storeLeaderless(Number(ms));
      else if (what === 'stall') sim.storeStall(Number(ms));
      else throw new Error(`store ${what ?? ''}: down, up, election MS or stall MS`);
    },
    unlink: (names) => sim.cutLink(names[0] as string),
    relink: (names) => sim.healLink(names[0] as string),
  });
}
