/**
 * The FUSE conformance suite against the real session (journal, staging, chunk store) on the
 * embedded file store, through src/fuse/main.js as `cairn mount` starts it.
 */
import '../helpers/env.js';
import { conformanceSuite } from './conformance.js';
import { startMainDaemon } from '../helpers/mount.js';

conformanceSuite(
  'real session, file store',
  startMainDaemon((spec) => ({ store: `file://${spec.storeDir}`, sessionOptions: { createIfMissing: true } })),
);
