/**
 * Interaction scripts, as etcd-io/raft's testdata/*.txt: a few commands, then the timeline
 * the simulator prints for them. A file reads as a story: what happens, then what every
 * server did about it, to the tenth of a millisecond. A change in behaviour shows as a
 * diff of that story.
 *
 *   # comment
 *   cluster tick=1000 beats=3 latency=1 [jitter=0] [quorum=3] [secret=...]
 *   start a b c [at=250]       servers (started now, or at a time in ms)
 *   run 4000                   advance simulated time by ms
 *   crash a | shutdown a | restart a | stall a 5000
 *   stepdown a | promote b | eligible a false
 *   partition a,b | c,d,e | heal
 *   cut a-b [c-d]              a and b stop hearing each other (both ways); the others hear all
 *   reload a 100 1             a's heartbeat_freq (ms) and check_beats change by a config reload
 *   duplicate a                a second process calling itself a
 *   ----
 *   (the expected timeline)
 */
import { SimCluster, type SimClusterOptions } from './cluster';

export interface Interaction {
  script: string[];
  expected: string[];
}

export function parseInteraction(text: string): Interaction {
  const lines = text.split('\n');
  const split = lines.findIndex((line) => line.trim() === '----');
  if (split < 0) throw new Error('an interaction file needs a "----" line between the script and the timeline');
  const expected = lines.slice(split + 1);
  while (expected.length > 0 && expected[expected.length - 1] === '') expected.pop();
  return { script: lines.slice(0, split), expected };
}

export function formatInteraction(script: string[], timeline: string[]): string {
  return [...script, '----', ...timeline, ''].join('\n');
}

/** Play a script; returns the timeline (state changes and events, level 6 and below). */
export function playInteraction(script: string[]): string[] {
  let sim: SimCluster | null = null;
  let quorum: number | undefined;
  const need = (): SimCluster => {
    if (!sim) throw new Error('the script must start with a "cluster" line');
    return sim;
  };
  for (const raw of script) {
    const line = raw.replace(/(^|\s)#.*/, '').trim();
    if (!line) continue;
    const [command, ...args] = line.split(/\s+/) as [string, ...string[]];
    const options = Object.fromEntries(args.filter((arg) => arg.includes('=')).map((arg) => arg.split('=') as [string, string]));
    const names = args.filter((arg) => !arg.includes('='));
    switch (command) {
      case 'cluster': {
        const config: SimClusterOptions = {
          seed: 1,
          tickMs: Number(options.tick ?? 1000),
          checkBeats: Number(options.beats ?? 3),
          latencyMs: Number(options.latency ?? 1),
          jitterMs: Number(options.jitter ?? 0),
          trace: true,
          traceLevel: 6,
        };
        if (options.secret) config.secret = options.secret;
        sim = new SimCluster(config);
        quorum = options.quorum ? Number(options.quorum) : undefined;
        break;
      }
      case 'start':
        for (const name of names)
          need().add(name, { ...(options.at ? { at: Number(options.at) } : {}), ...(quorum !== undefined ? { quorum } : {}) });
        break;
      case 'run':
        need().runFor(Number(names[0]));
        break;
      case 'crash':
        for (const name of names) need().crash(name);
        break;
      case 'shutdown':
        for (const name of names) need().shutdown(name);
        break;
      case 'restart':
        for (const name of names) need().restart(name);
        break;
      case 'stall':
        need().stall(names[0] as string, Number(names[1]));
        break;
      case 'stepdown':
        need().stepDown(names[0] as string);
        break;
      case 'promote':
        need().promote(names[0] as string);
        break;
      case 'eligible':
        need().setEligible(names[0] as string, names[1] !== 'false');
        break;
      case 'partition':
        need().partition(
          line
            .slice('partition'.length)
            .split('|')
            .map((group) =>
              group
                .split(',')
                .map((name) => name.trim())
                .filter(Boolean),
            ),
        );
        break;
      case 'heal':
        need().heal();
        break;
      case 'cut':
        need().cut(names.map((pair) => pair.split('-') as [string, string]));
        break;
      case 'reload':
        need().setNodeTiming(names[0] as string, Number(names[1]), Number(names[2]));
        break;
      case 'duplicate':
        need().addDuplicate(names[0] as string, quorum !== undefined ? { quorum } : {});
        break;
      default:
        throw new Error(`unknown command "${command}" in: ${raw}`);
    }
  }
  return need().timeline;
}
