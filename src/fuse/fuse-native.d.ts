/**
 * Minimal typings of fuse-native 2.x (CommonJS, no bundled types): the parts Cairn uses.
 * Callbacks take a return code first: 0 for success, a negative errno for an error, or a byte
 * count for read/write.
 */
declare module 'fuse-native' {
  interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    displayFolder?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    maxRead?: number;
    umask?: number;
    uid?: number;
    gid?: number;
    entryTimeout?: number | string;
    attrTimeout?: number | string;
    timeout?: number | false | Record<string, number | false>;
    [k: string]: unknown;
  }

  class Fuse {
    constructor(mnt: string, ops: Record<string, (...args: any[]) => void>, opts?: FuseOptions);
    readonly mnt: string;
    opts: FuseOptions;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    _fuseOptions(): string;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static readonly ENOENT: number;
    static readonly EPERM: number;
    [k: string]: unknown;
  }
  export = Fuse;
}
