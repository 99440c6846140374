/** The addon loader's malloc tuning (src/util/addon.ts, native/cairn_fuse.c `mallocTune`), in child processes: it is once per process. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { loadAddon } from '../../src/util/addon.js';

const ADDON_JS = new URL('../../src/util/addon.js', import.meta.url).href;

/** What `tuneMalloc()` answers in a fresh process with `env` added. */
function tunedIn(env: NodeJS.ProcessEnv): Promise<boolean> {
  const src = `const { tuneMalloc } = await import(${JSON.stringify(ADDON_JS)}); process.stdout.write(JSON.stringify([tuneMalloc(), tuneMalloc()]));`;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', src], { env: { ...process.env, ...env } }, (err, out) => {
      if (err) return reject(err);
      const [first, again] = JSON.parse(out) as [boolean, boolean];
      assert.equal(again, first, 'a second call answers as the first');
      resolve(first);
    }),
  );
}

describe('tuneMalloc', () => {
  it('fixes malloc thresholds where the addon loads, and CAIRN_MALLOC_TUNE=0 leaves malloc alone', async () => {
    assert.ok(loadAddon(), 'the addon is built (npm run build:native)');
    assert.equal(await tunedIn({ CAIRN_MALLOC_TUNE: '' }), true);
    assert.equal(await tunedIn({ CAIRN_MALLOC_TUNE: '0' }), false);
  });

  it('the addon refuses thresholds malloc cannot take', () => {
    const a = loadAddon() as { mallocTune(m: number, t: number): boolean };
    assert.equal(a.mallocTune(-1, 64 << 20), false);
    assert.equal(a.mallocTune(32 << 20, 2 ** 40), false);
    assert.equal(a.mallocTune(Number.NaN, 0), false);
  });
});
