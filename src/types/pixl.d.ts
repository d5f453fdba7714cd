// Typings for pixl-server and its Component, which ship none: shipped with this package
// (referenced from component.d.ts) so a TypeScript app gets a typed `server.MultiServer`
// without writing anything.
//
// They are declared under patterns, not under the exact names. TypeScript consults a pattern
// module only after everything else failed: an exact `declare module 'pixl-server'` (the
// user's own), then real typings found on disk (should pixl-server or @types ever ship
// some). Either one therefore replaces these whole, where an exact declaration here would
// merge with the user's and clash (TS2300 duplicate identifier). '*pixl-server' matches
// specifiers ending in "pixl-server", so 'pixl-server-web' and the other pixl-server-*
// packages are not caught by it.
//
// Other modules name these declarations by the pattern itself (`require('*pixl-server/component')`,
// `declare module '*pixl-server'`): that exact string finds this declaration and never a
// user's, so nothing here depends on, or augments, a declaration whose shape we do not know.

declare module '*pixl-server/component' {
  import { EventEmitter } from 'node:events';

  namespace Component {
    interface ConfigObject extends EventEmitter {
      get(): Record<string, unknown>;
      get(key: string): unknown;
      set(key: string, value: unknown): void;
    }
    interface Logger {
      debug(level: number, msg: string, data?: unknown): void;
      error(code: string | number, msg: string, data?: unknown): void;
      get(key: string): unknown;
      set(key: string | Record<string, unknown>, value?: unknown): void;
    }
    /** What a component sees of its server: components are `server[name]`, untyped here. */
    interface Server extends EventEmitter {
      hostname: string;
      ip: string;
      started?: number;
      shut?: boolean;
      config: ConfigObject;
      logger: Logger;
      shutdown(callback?: () => void): void;
      [key: string]: unknown;
    }
  }

  interface Component extends EventEmitter {}
  class Component {
    __name: string;
    server: Component.Server;
    config: Component.ConfigObject;
    defaultConfig: Record<string, unknown> | null;
    logger: Component.Logger;
    init(server: Component.Server, config?: Component.ConfigObject): void;
    initConfig(): void;
    earlyStart(): boolean;
    startup(callback: (err?: Error | null) => void): void;
    shutdown(callback: () => void): void;
    debugLevel(level: number): boolean;
    logDebug(level: number, msg: string, data?: unknown): void;
    logError(code: string | number, msg: string, data?: unknown): void;
  }
  export = Component;
}

declare module '*pixl-server' {
  import Component = require('*pixl-server/component');

  namespace PixlServer {
    interface Options {
      __name?: string;
      __version?: string;
      config?: Config;
      configFile?: string;
      components?: Array<new () => Component>;
      [key: string]: unknown;
    }
    /**
     * The config object as an app writes it. A component package adds its section by
     * augmentation (`interface Config { MyComponent?: MyComponentSection }`), so a misspelt
     * key inside that section does not compile; every other key (pixl-server's own, other
     * components', the app's) stays open.
     */
    interface Config {
      [key: string]: unknown;
    }
    /**
     * The components a server holds, by `__name` (pixl-server sets `server[__name]`).
     * A component package adds itself by augmentation:
     * `declare module '*pixl-server' { interface Components { MyComponent: MyComponent } }`.
     */
    interface Components {}
    /**
     * Events components emit on the server: name → listener arguments. Listeners for
     * these names are checked; other names (pixl-server's own 'ready', 'tick', '12:30', …,
     * an app's) stay open, as on any EventEmitter.
     */
    interface Events {}
    /** A listener for an event of the server that is not in Events. */
    type AnyListener = (...args: any[]) => void;
    /** `name`, unless Events types it: its listener must then match (no fallback overload). */
    type OtherEvent<N> = N extends keyof Events ? never : N;
  }

  interface PixlServer extends Component.Server, PixlServer.Components {}
  class PixlServer {
    constructor(options?: PixlServer.Options);
    startup(callback?: () => void): void;
    shutdown(callback?: () => void): void;

    on<E extends keyof PixlServer.Events>(event: E, listener: (...args: PixlServer.Events[E]) => void): this;
    on<N extends string | symbol>(event: PixlServer.OtherEvent<N>, listener: PixlServer.AnyListener): this;
    once<E extends keyof PixlServer.Events>(event: E, listener: (...args: PixlServer.Events[E]) => void): this;
    once<N extends string | symbol>(event: PixlServer.OtherEvent<N>, listener: PixlServer.AnyListener): this;
    off<E extends keyof PixlServer.Events>(event: E, listener: (...args: PixlServer.Events[E]) => void): this;
    off<N extends string | symbol>(event: PixlServer.OtherEvent<N>, listener: PixlServer.AnyListener): this;
    addListener<E extends keyof PixlServer.Events>(event: E, listener: (...args: PixlServer.Events[E]) => void): this;
    addListener<N extends string | symbol>(event: PixlServer.OtherEvent<N>, listener: PixlServer.AnyListener): this;
    removeListener<E extends keyof PixlServer.Events>(event: E, listener: (...args: PixlServer.Events[E]) => void): this;
    removeListener<N extends string | symbol>(event: PixlServer.OtherEvent<N>, listener: PixlServer.AnyListener): this;
  }
  export = PixlServer;
}
