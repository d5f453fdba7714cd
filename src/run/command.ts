/**
 * The `run` subcommand of the CLI: `pixl-server-multi run [options] -- command [args...]`.
 * Registered on the CLI's program by `registerRunCommand`, so the CLI itself only names it.
 *
 * Exit codes: 2 bad arguments or config (the message names the flag or key and the value);
 * 1 a run-time error (pixl-server missing, the port taken, no pid namespace with
 * `--pid-namespace on`); 0 after leaving on a signal; with `--on-exit exit`, the command's.
 */
import type { Command } from 'commander';
import { resolveRunOptions, UsageError, type RunFlags } from './options';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerRunCommand(program: Command, setExitCode: (code: number) => void): Command {
  const run: Command = program
    .command('run')
    .description('join the cluster and run a command only while this server is the master')
    .usage('[options] -- command [args...]')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-c, --config <file>', 'JSON file: the MultiServer section\'s keys, plus "hostname" and "ip"')
    .option('--hostname <name>', "this server's name in the cluster (default: the OS hostname)")
    .option('--ip <address>', 'the address announced to the cluster (default: the first external IPv4)')
    .option('-p, --port <port>', 'comm_port')
    .option('--heartbeat-freq <seconds>', 'heartbeat_freq')
    .option('--check-beats <n>', 'check_beats')
    .option('-b, --broadcast-ip <ip>', 'broadcast_ip')
    .option('--bind-ip <ip>', 'bind_ip')
    .option('--cluster-id <id>', 'cluster_id')
    .option('--priority <n>', 'priority')
    .option('--quorum <n>', 'quorum')
    .option('--secret-file <file>', 'secret_key, read from a file: one key a line (the first signs)')
    .option('--etcd <url>', 'mastership from etcd: a client URL (repeat for each member)', collect, [] as string[])
    .option('--grace <seconds>', 'SIGTERM to SIGKILL when the command is stopped on purpose', '10')
    .option(
      '--loss-grace <seconds>',
      'SIGTERM to SIGKILL when the role is lost involuntarily (default: the shorter of --grace and half a tick, or half the etcd step-down margin)',
    )
    .option('--on-exit <policy>', 'when the command exits by itself: restart, step-down or exit', 'restart')
    .option('--restart-delay <seconds>', 'first restart delay; doubles with each exit in a row', '1')
    .option('--restart-delay-max <seconds>', 'longest restart delay; a run this long resets the doubling')
    .option('--on-master <command>', 'shell command run on becoming master (and again after winning a conflict)')
    .option('--on-slave <command>', 'shell command run on following another master or giving the role up')
    .option('--on-fault <command>', 'shell command run when the command exits by itself, cannot start, or is stopped by its guardian')
    .option('--hook-timeout <seconds>', 'a hook still running after this is killed', '30')
    .option('--pid-namespace <mode>', 'auto, on or off: run the command in a pid namespace (root), so no descendant survives it', 'auto')
    .option(
      '--health-cmd <command>',
      'shell command checked every --health-interval: exit 0 passes; failing, this server is not eligible (a master stops the command, then hands over)',
    )
    .option('--health-interval <seconds>', 'seconds between two checks (default 2)')
    .option('--health-rise <n>', 'passes in a row that make a failing server eligible again (default 2)')
    .option('--health-fall <n>', 'failures in a row that make a server ineligible (default 3)')
    .option('--health-timeout <seconds>', 'a check still running after this fails, and is killed (default: the interval)')
    .option('--log-file <file>', 'also log to this file (log lines go to stderr)')
    .option('--debug-level <n>', 'log verbosity, 1 to 10', '4')
    .addHelpText(
      'after',
      '\nThe command gets MULTI_TERM (the fencing token), MULTI_MASTER and MULTI_HOSTNAME. It runs in\n' +
        'its own process group, stopped (SIGTERM, then SIGKILL) before the role is handed over, and\n' +
        'killed by a guardian process if this wrapper dies or freezes. Hooks get MULTI_EVENT and\n' +
        'MULTI_REASON too. Exit codes: 2 bad arguments, 1 run-time error, 0 after a signal, or the\n' +
        "command's own with --on-exit exit.",
    )
    .action(async (command: string[], flags: RunFlags) => {
      let options;
      try {
        options = resolveRunOptions(flags, command);
      } catch (err) {
        if (err instanceof UsageError) run.error(`error: ${err.message}`, { exitCode: EXIT_USAGE, code: 'pixl-server-multi.usage' });
        throw err;
      }
      // Loaded only now: `status` needs neither pixl-server nor the component.
      const { runWrapper, RunError } = await import('./wrapper');
      try {
        const code = await runWrapper(options);
        setExitCode(code);
        // Nothing of ours is left running; a handle someone else left must not keep us here.
        setTimeout(() => process.exit(code), 2000).unref();
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        // A RunError is expected (pixl-server missing, no pid namespace); anything else is a bug, said as such.
        if (!(err instanceof RunError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
        setExitCode(EXIT_RUNTIME);
      }
    });
  return run;
}
