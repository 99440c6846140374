/**
 * The FUSE conformance and visibility suites against the real session (journal, staging, chunk
 * store) on the embedded file store, through src/fuse/main.js as `cairn mount` starts it.
 */
import '../helpers/env.js';
import { conformanceSuite } from './conformance.js';
import { visibilitySuite } from './visibility.js';
import { startFileDaemon } from '../helpers/mount.js';

const real = startFileDaemon();
conformanceSuite('real session, file store', real);
visibilitySuite('real session, file store', real);
