/**
 * The object-store layer's public surface: the interface, the backends and `openStore`.
 * Layers above import from here only.
 */
export type { ByteRange, ListOptions, ObjectInfo, ObjectStore, PutOptions } from './types.js';
export { checkKey, checkPrefix } from './keys.js';
export { FileStore } from './file.js';
export { S3Store, parseS3Url, MULTIPART_THRESHOLD, type S3Location } from './s3.js';
export { MemoryStore } from './memory.js';
export { openStore, parseFileUrl, STORE_URL_FORMS } from './open.js';
