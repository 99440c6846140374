/**
 * The FUSE layer's public surface, for the CLI and embedders: mounting and unmounting volumes,
 * talking to mount daemons, and running a daemon in-process. Internals (adapter, handle table)
 * are imported from their modules by tests only.
 */
export { mount, unmount, fusermount, type MountOptions, type MountResult, type UnmountOptions } from './mount.js';
export { controlRequest, findMounts, statusAll, type ControlOp, type ControlOptions, type MountStatus, type CairnMount } from './control.js';
export { runDaemon, type DaemonOptions, type MountHandle, type CloseResult, type Logger } from './daemon.js';
export { startDaemon, type DaemonConfig, type OpenSession, type DaemonSession } from './main.js';
export { cairnMountAt } from './mountinfo.js';
