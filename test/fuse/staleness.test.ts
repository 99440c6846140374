/**
 * Stale kernel caches after reload. The native binding lets the kernel cache names, attributes
 * and pages for long and invalidates exactly what a reload changed; this suite changes, deletes,
 * creates, renames, retypes and truncates files in mount B, commits, reloads mount A that had all
 * of it cached (contents read, every name stat'ed, an absent name looked up), and compares what A
 * shows with what B shows. Runs over the real session on the file store (reload names the
 * changed paths).
 *
 * Under fuse-native (no invalidation, zero timeouts, pages kept by auto_cache while size and mtime
 * stay) a file another writer changed without changing its size and mtime is reported 1 ms newer
 * (src/fuse/freshness.ts) so that its stale pages are dropped: A then shows B's view with those
 * mtimes up to a few ms ahead; a file written through A itself and rewritten by B at the same
 * size and mtime can still be served from A's pages there (compared on native only).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir, type StartDaemon } from '../helpers/mount.js';

/** Everything a process sees under `dir`: names, types, sizes, modes, mtimes, contents, targets. */
async function view(dir: string): Promise<string> {
  return shOk(
    `cd ${q(dir)} && find . -mindepth 1 -printf '%p %y %s %m %T@ %l\\n' | sort && ` +
      `find . -type f -print0 | sort -z | xargs -0 -r md5sum`,
  );
}

/**
 * `a` with each mtime (`%T@`) that is at most 2 ms ahead of the same path's in `b` set to b's: what
 * fuse-native's freshness bump (1 ms per reload) may add, nothing more.
 */
function withoutFreshnessBump(a: string, b: string): string {
  const mtimes = new Map<string, number>();
  for (const l of b.split('\n')) {
    const f = l.split(' ');
    if (f.length >= 5) mtimes.set(f[0]!, Number(f[4]));
  }
  return a
    .split('\n')
    .map((l) => {
      const f = l.split(' ');
      const want = f.length >= 5 ? mtimes.get(f[0]!) : undefined;
      if (want === undefined || f[4] === undefined) return l;
      const ahead = Number(f[4]) - want;
      if (ahead > 0 && ahead <= 0.002)
        f[4] = b
          .split('\n')
          .find((x) => x.startsWith(`${f[0]} `))!
          .split(' ')[4]!;
      return f.join(' ');
    })
    .join('\n');
}

/** Until `fn` stops failing with VOLUME_BUSY (a release reaches the daemon asynchronously). */
async function reload(mountpoint: string): Promise<unknown> {
  for (let i = 0; ; i++) {
    try {
      return await controlRequest(mountpoint, 'reload');
    } catch (err) {
      if ((err as { code?: string }).code !== 'VOLUME_BUSY' || i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function staleSuite(name: string, start: StartDaemon): void {
  describe(`no stale kernel cache after reload (${name})`, () => {
    after(() => cleanupAll());

    it('shows in A exactly what B committed: changed, deleted, created, renamed, retyped, truncated', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const a = await start({ mountpoint: path.join(base, 'a'), volume: 'stale', storeDir });
      const b = await start({ mountpoint: path.join(base, 'b'), volume: 'stale', storeDir });
      try {
        const A = a.mountpoint;
        const B = b.mountpoint;
        await shOk(
          `cd ${q(A)} && printf AAAA > same && printf 0123456789 > grow && head -c 300000 /dev/urandom > trunc && ` +
            `printf gone > del && printf moved > ren && mkdir -p dir/sub && printf deep > dir/sub/f && ` +
            `printf x > retype && ln -s same link && printf m > mode && touch -d @1700000000 same`,
        );
        await controlRequest(A, 'commit');
        await reload(B);
        // A caches everything: contents, attributes, names, and a name that is absent.
        const before = await view(A);
        await shOk(`cd ${q(A)} && cat same grow trunc del ren dir/sub/f retype link mode >/dev/null`);
        await shOk(`cd ${q(A)} && ls -laR . >/dev/null`);
        await shOk(`cd ${q(A)} && ! stat new 2>/dev/null && ! stat dir/sub/new 2>/dev/null`);
        assert.equal(await view(B), before);

        await shOk(
          `cd ${q(B)} && printf BBBB > same && touch -d @1700000000 same && printf 0123456789abcdef > grow && ` +
            `truncate -s 1000 trunc && rm del && mv ren renamed && printf fresh > new && ` +
            `printf deeper > dir/sub/new && ` +
            `mv dir dir2 && rm retype && mkdir retype && ln -sfn grow link && chmod 600 mode`,
        );
        await controlRequest(B, 'commit');
        const bView = await view(B);
        assert.equal(await view(A), before, 'A changed before its reload');

        await reload(A);
        const binding = ((await controlRequest(A, 'status')) as { binding?: string }).binding;
        const aView = await view(A);
        if (binding === 'native') {
          assert.equal(aView, bView);
        } else {
          // fuse-native: the freshness bump (≤ 2 ms ahead, on files changed at the same size and
          // mtime), and a file written through A and rewritten by B at the same size and mtime may
          // still be served from A's pages (a known limit of the fallback: docs/SEMANTICS.md).
          const drop = (v: string): string =>
            v
              .split('\n')
              .filter((l) => !l.endsWith('./same'))
              .join('\n');
          assert.equal(drop(withoutFreshnessBump(aView, bView)), drop(bView));
        }
        const seen = await shOk(`cd ${q(A)} && cat grow new dir2/sub/new && readlink link && ls -d retype/`);
        assert.equal(seen, '0123456789abcdeffreshdeepergrow\nretype/\n');
        await shOk(`cd ${q(A)} && ! test -e del && ! test -e ren && ! test -e dir && test -d retype`);
        if (binding === 'native') assert.equal(await shOk(`cat ${q(`${A}/same`)}`), 'BBBB');
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('drops cached pages of a file rewritten in place, also when read through a long-lived cwd', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const a = await start({ mountpoint: path.join(base, 'a'), volume: 'stale2', storeDir });
      const b = await start({ mountpoint: path.join(base, 'b'), volume: 'stale2', storeDir });
      try {
        await shOk(`mkdir ${q(`${a.mountpoint}/d`)} && head -c 2000000 /dev/zero > ${q(`${a.mountpoint}/d/big`)}`);
        await controlRequest(a.mountpoint, 'commit');
        await reload(b.mountpoint);
        await shOk(`cat ${q(`${a.mountpoint}/d/big`)} > /dev/null`);
        // Same size, new bytes in the middle, new mtime.
        await shOk(`printf XYZ | dd of=${q(`${b.mountpoint}/d/big`)} bs=1 seek=1000000 conv=notrunc status=none`);
        await controlRequest(b.mountpoint, 'commit');
        await reload(a.mountpoint);
        const want = await shOk(`md5sum < ${q(`${b.mountpoint}/d/big`)}`);
        assert.equal(await shOk(`cd ${q(`${a.mountpoint}/d`)} && md5sum < big`), want);
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  });
}

staleSuite('real session, file store', startFileDaemon());
