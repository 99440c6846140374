/**
 * Runs the FUSE conformance suite against the in-memory session, both through the test fixture
 * daemon and through src/fuse/main.ts (config path, `sessionModule` hook).
 */
import { conformanceSuite } from './conformance.js';
import { startMemDaemon, startMainMemDaemon } from '../helpers/mount.js';

conformanceSuite('memory session, fixture daemon', startMemDaemon);
if (process.env.CAIRN_FUSE_FULL) conformanceSuite('memory session, main.js', startMainMemDaemon);
