// Typings for pixl-* modules this package may use internally. Not shipped (package.json
// `files` lists pixl.d.ts only) and not referenced from any public declaration, so an app's
// own declarations of these modules never meet them.

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
