/**
 * The wrapper's pixl-server: loaded when `run` is used (pixl-server is a peer dependency, said
 * plainly when missing), with MultiServer and a component of our own after it, log lines on
 * stderr (the command's own output keeps stdout), and no command-line options of its own.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import type PixlServer = require('pixl-server');
import type Component = require('pixl-server/component');
import type MultiServer = require('../component');
import type { RunOptions } from './options';

export class RunError extends Error {
  override name = 'RunError';
}

interface Modules {
  PixlServer: typeof PixlServer;
  Component: typeof Component;
  MultiServer: typeof MultiServer;
}

/** pixl-server is a peer dependency: say so plainly when it is missing. */
export function loadModules(): Modules {
  try {
    require.resolve('pixl-server');
  } catch {
    throw new RunError('`pixl-server-multi run` needs the pixl-server package (a peer dependency): npm install pixl-server');
  }
  return {
    PixlServer: require('pixl-server') as typeof PixlServer,
    Component: require('pixl-server/component') as typeof Component,
    MultiServer: require('../index') as typeof MultiServer,
  };
}

/** What the wrapper does when pixl-server starts and stops its component. */
export interface RunHooks {
  /** Every component has started: the wrapper listens to MultiServer from here on. */
  attach(server: PixlServer): void;
  /** pixl-server is shutting down (the wrapper goes first): resolves once the command is stopped. */
  leave(): Promise<void>;
}

/** Build the server and start it (pixl-server reports its startup through its components). */
export function startServer(modules: Modules, options: RunOptions, hooks: RunHooks): PixlServer {
  // A component of its own, after MultiServer: pixl-server shuts components down in
  // reverse order, so the command is stopped before MultiServer announces our departure.
  class MultiRun extends modules.Component {
    override __name = 'MultiRun';
    override startup(callback: (err?: Error | null) => void): void {
      hooks.attach(this.server as unknown as PixlServer);
      callback();
    }
    override shutdown(callback: () => void): void {
      void hooks.leave().then(callback);
    }
  }
  const logFile = options.logFile ? path.resolve(options.logFile) : os.devNull;
  const server = new modules.PixlServer({
    __name: 'PixlServerMultiRun',
    __version: '1.0',
    config: {
      hostname: options.hostname,
      ...(options.ip ? { ip: options.ip } : {}),
      foreground: true,
      echo: true,
      log_dir: path.dirname(logFile),
      log_filename: path.basename(logFile),
      debug_level: options.debugLevel,
      MultiServer: options.section,
    },
    components: [modules.MultiServer as unknown as new () => Component, MultiRun as unknown as new () => Component],
    echoer: (_line: string, _cols: unknown, args: Record<string, unknown>) => {
      const data =
        args.data === undefined || args.data === null || args.data === ''
          ? ''
          : ` ${typeof args.data === 'string' ? args.data : JSON.stringify(args.data)}`;
      const code = args.category === 'debug' ? String(args.code) : `${String(args.category)}/${String(args.code)}`;
      process.stderr.write(`${String(args.date)} ${String(args.component)}[${code}]: ${String(args.msg)}${data}\n`);
    },
  });
  // pixl-server reads its own options from the command line (`--config` would be taken
  // as its config file): it sees none.
  const argv = process.argv;
  process.argv = argv.slice(0, 2);
  try {
    server.startup();
  } finally {
    process.argv = argv;
  }
  return server;
}
