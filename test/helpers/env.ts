/**
 * Test environment: a private CAIRN_HOME (sessions, chunk cache, default store) per test process,
 * removed at exit. Import it first in any test that touches Cairn's local state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const testHome = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-home-'));
process.env.CAIRN_HOME = testHome;
delete process.env.CAIRN_STORE;
process.on('exit', () => fs.rmSync(testHome, { recursive: true, force: true }));
