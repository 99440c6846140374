/**
 * Runs the FUSE conformance suite against the in-memory session through the test fixture
 * daemon (the adapter alone); real.test.ts runs it against the real session.
 */
import { conformanceSuite } from './conformance.js';
import { startMemDaemon } from '../helpers/mount.js';

conformanceSuite('memory session, fixture daemon', startMemDaemon);
