/** The daemon (src/fuse/daemon.ts) over the in-memory session: read-only mounts, control socket, commit/reload visibility, background and shutdown commits. */
import { visibilitySuite } from './visibility.js';
import { startMemDaemon } from '../helpers/mount.js';

visibilitySuite('memory session', startMemDaemon);
