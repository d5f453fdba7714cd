// Minimal typings for the parts of the pixl-* packages this package touches.
// They ship no declarations of their own.

declare module 'pixl-server/component' {
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

declare module 'pixl-server' {
  import Component = require('pixl-server/component');
  interface PixlServerOptions {
    __name?: string;
    __version?: string;
    config?: Record<string, unknown>;
    configFile?: string;
    components?: Array<new () => Component>;
    [key: string]: unknown;
  }
  interface PixlServer extends Component.Server {}
  class PixlServer {
    constructor(options?: PixlServerOptions);
    startup(callback?: () => void): void;
    shutdown(callback?: () => void): void;
  }
  export = PixlServer;
}

declare module 'pixl-tools' {
  const Tools: {
    timeNow(floor?: boolean): number;
    numKeys(hash: object): number;
    hashKeysToArray(hash: object): string[];
    getTextFromBytes(bytes: number, precision?: number): string;
    commify(n: number): string;
    shortFloat(n: number, places?: number): number;
    [key: string]: unknown;
  };
  export = Tools;
}

declare module 'pixl-class' {
  const Class: {
    create(members: Record<string, unknown>): new (...args: unknown[]) => unknown;
  };
  export = Class;
}
