// Minimal types for s3rver (which ships none): only what test/helpers/s3server.ts uses.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  export default class S3rver {
    constructor(options?: S3rverOptions);
    /** Its FilesystemStore (see ./s3rver-atomic.ts). */
    store: unknown;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
