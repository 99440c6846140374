/**
 * Native fetches under a native mount (native/nfetch.c, native/nread.c): a cold sequential read
 * of a file on a real S3 server (s3rver, behind the fault proxy) is answered from the chunks the
 * addon's fetch threads verified — a READ that needs a chunk a fetch thread is bringing waits for
 * it in the addon instead of in JavaScript — and returns the file's bytes; when those GETs fail
 * (reset, a body that stalls) the waiting READs go to JavaScript, which fetches the chunks again
 * through the store: the right bytes, no hang. Skipped without the addon.
 */
import { testHome } from '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeStatus, type DaemonStatus } from '../../src/cli/status.js';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import { Volume } from '../../src/volume/index.js';
import { useFaultedS3, type FaultMode } from '../helpers/faultproxy.js';
import { cleanupAll, q, shOk, startMainDaemon, tmpDir } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Figures {
  awaited?: number;
  awaitTimeouts?: number;
  offered?: number;
  misses: number;
}
interface Status extends DaemonStatus {
  nativeReads: Figures | null;
  nativeFetches: { runs: number; bytes: number; failures: number; lastError?: string };
}

describe('native fetches under a native mount', { skip: loadNative() ? false : 'native addon not built' }, () => {
  const env = useFaultedS3(11);
  let url = '';
  let data: Buffer;
  after(() => cleanupAll());

  /** Mounts the volume over an empty host cache, reads big.bin in a child process: its sha256 and the mount's figures. */
  async function coldRead(): Promise<{ got: string; figures: Figures; status: Status; logs: string }> {
    const base = await tmpDir('cairn-nfetch-');
    const mnt = path.join(base, 'mnt');
    await fs.mkdir(mnt);
    const d = await startMainDaemon(() => ({ store: url }), {
      CAIRN_FUSE_BINDING: 'native',
      CAIRN_CACHE_DIR: path.join(base, 'cache'),
    })({ mountpoint: mnt, volume: 'cold' });
    try {
      const got = (await shOk(`sha256sum ${q(path.join(mnt, 'big.bin'))}`, { timeoutMs: 120_000 })).split(' ')[0];
      const st = (await controlRequest(mnt, 'status')) as Status;
      assert.equal(st.binding, 'native');
      assert.ok(st.nativeReads, 'native reads are on');
      return { got, figures: st.nativeReads, status: st, logs: d.logs() };
    } finally {
      await d.stop();
      await fs.rm(base, { recursive: true, force: true });
    }
  }

  it('a volume with a 24 MiB file on S3', async () => {
    assert.ok(testHome);
    url = env.fp.freshUrl('timeout_ms=12000'); // the native GETs' idle limit then 2 s: a stalled body is given up soon
    data = randomBytes(24 * MiB);
    const vol = await Volume.fromName('cold', { store: url, createIfMissing: true });
    await vol.batchUpload({}, (b) => b.putFile(data, '/big.bin'));
    await vol.close();
  });

  it('a cold sequential read: READs wait in the addon for the chunks the fetch threads bring; the right bytes', async () => {
    const { got, figures, status } = await coldRead();
    assert.equal(got, sha(data));
    assert.ok((figures.offered ?? 0) > 0, `chunks offered by the fetch threads: ${JSON.stringify(figures)}`);
    assert.ok((figures.awaited ?? 0) > 0, `READs that waited in the addon: ${JSON.stringify(figures)}`);
    assert.equal(figures.awaitTimeouts, 0, 'no READ waited out its limit');
    const nf = status.nativeFetches;
    assert.ok(nf.runs > 0 && nf.bytes >= data.length && nf.failures === 0, JSON.stringify(nf));
    // `cairn status` says so.
    assert.match(describeStatus(status), new RegExp(`native +${nf.runs} runs \\(.+\\) fetched on the addon's threads\n`));
  });

  for (const mode of ['reset', 'stall-body'] as FaultMode[]) {
    it(`GETs that fail on the fetch threads (${mode}): the waiting READs go to JavaScript; the right bytes`, async () => {
      const before = env.fp.injectedTotal();
      env.fp.rules = [{ mode, rate: 0.3, methods: ['GET'], key: /packs/ }];
      try {
        const { got, logs, figures, status } = await coldRead();
        assert.equal(got, sha(data), logs);
        // A READ waiting for a chunk of a failed GET is let go when the GET ends, not after its limit.
        assert.equal(figures.awaitTimeouts, 0, JSON.stringify(figures));
        assert.ok(status.nativeFetches.failures > 0, `native GETs failed: ${JSON.stringify(status.nativeFetches)}`);
        assert.match(describeStatus(status), /failed and fetched again \(last: /);
      } finally {
        env.fp.rules = [];
      }
      assert.ok(env.fp.injectedTotal() > before, 'faults were injected');
    });
  }
});
