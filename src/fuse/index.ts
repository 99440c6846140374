/**
 * The FUSE layer's public surface, for the CLI and embedders: mounting and unmounting volumes,
 * talking to mount daemons, and running a mount in-process (startMount). Internals (adapter,
 * open-file table) are imported from their modules by tests only.
 */
export { mount, unmount, fusermount, type MountOptions, type LaunchOptions, type MountResult, type UnmountOptions } from './mount.js';
export {
  controlRequest,
  findMounts,
  statusAll,
  type ControlOp,
  type ControlOptions,
  type MountStatus,
  type CairnMount,
} from './control.js';
export { runDaemon, type DaemonRuntime, type MountHandle, type CloseResult, type Logger } from './daemon.js';
export type { MountConfig } from './config.js';
export { startMount, type DaemonSession, type StartOptions } from './start.js';
export { cairnMountAt } from './mountinfo.js';
