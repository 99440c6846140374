/**
 * Real programs inside a mount, checked after a commit and a remount: `tar -x` then `tar -d`
 * (contents, modes and mtimes compared), `rsync -a` then a second `rsync -a` that transfers
 * nothing, git (init, add, commit, fsck, a clean status), and SQLite with the rollback journal
 * and with WAL (a rolled-back transaction, `integrity_check`).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, shOk } from '../helpers/mount.js';
import { programMount } from './harness.js';

/** Builds a small source tree under `dir`: nested dirs, files, a symlink, old and sub-second mtimes. */
function makeTree(dir: string): string {
  return (
    `mkdir -p ${q(dir)} && cd ${q(dir)} && mkdir -p a/b/c e && ` +
    `for i in $(seq 1 40); do printf "file $i\\n%.0s" $(seq 1 $i) > a/f$i; done && ` +
    `head -c 300000 /dev/urandom > a/b/big && printf x > a/b/c/one && chmod 600 a/b/c/one && ` +
    `printf '#!/bin/sh\\n' > e/run && chmod 755 e/run && ln -s ../a/f1 e/link && ` +
    `touch -d '2019-06-01 10:00:00.123456789' a/f1 && touch -h -d '2018-01-01 00:00:01.9999999' e/link && ` +
    `touch -d '2019-06-01 10:00:00.9999999' a/f2 && ` +
    `touch -d 2017-01-01 a/b/c a/b && touch -d '2017-01-01 00:00:00.9996' e && touch -d 2016-01-01 a`
  );
}

/** Names, types, modes, mtimes (whole seconds), link targets and file checksums under `dir`. */
function listing(dir: string): Promise<string> {
  return shOk(
    `cd ${q(dir)} && find . -mindepth 1 -printf '%p %y %m %TY-%Tm-%Td+%TT %l\\n' | sed 's/\\.[0-9]* / /' | sort && ` +
      `find . -type f -print0 | sort -z | xargs -0 -r md5sum`,
  );
}

describe('real programs in a mount', () => {
  after(() => cleanupAll());

  it('tar -x then tar -d finds no difference, also after commit and remount', async () => {
    const m = await programMount('tar');
    try {
      await shOk(makeTree(`${m.local}/src`));
      await shOk(`tar -C ${q(`${m.local}/src`)} -cf ${q(`${m.local}/t.tar`)} .`);
      await shOk(`mkdir ${q(`${m.local}/x`)} && tar -C ${q(`${m.local}/x`)} -xf ${q(`${m.local}/t.tar`)}`);
      await shOk(`mkdir ${q(`${m.dir}/x`)} && tar -C ${q(`${m.dir}/x`)} -xf ${q(`${m.local}/t.tar`)}`);
      const want = await listing(`${m.local}/x`);
      await shOk(`tar -C ${q(`${m.dir}/x`)} -df ${q(`${m.local}/t.tar`)}`);
      assert.equal(await listing(`${m.dir}/x`), want);
      await controlRequest(m.dir, 'commit');
      await m.remount();
      await shOk(`tar -C ${q(`${m.dir}/x`)} -df ${q(`${m.local}/t.tar`)}`);
      assert.equal(await listing(`${m.dir}/x`), want);
    } finally {
      await m.stop();
    }
  });

  it('rsync -a in, then a second rsync -a transfers nothing, also after remount', async () => {
    const m = await programMount('rsync');
    try {
      const src = `${m.local}/src/`;
      await shOk(makeTree(src));
      await shOk(`rsync -a ${q(src)} ${q(`${m.dir}/r/`)}`);
      const again = (): Promise<string> => shOk(`rsync -a --itemize-changes ${q(src)} ${q(`${m.dir}/r/`)}`);
      assert.equal(await again(), '', 'the second rsync changed something');
      assert.equal(await listing(`${m.dir}/r`), await listing(src));
      await m.remount();
      assert.equal(await again(), '', 'rsync after remount changed something');
      const stats = await shOk(`rsync -a --stats ${q(src)} ${q(`${m.dir}/r/`)}`);
      assert.match(stats, /Number of regular files transferred: 0\b/);
    } finally {
      await m.stop();
    }
  });

  it('git init, add, commit, fsck and a clean status, also after remount', async () => {
    const m = await programMount('git');
    try {
      const git = 'git -c user.name=t -c user.email=t@e -c init.defaultBranch=main -c core.fsync=all';
      await shOk(makeTree(`${m.dir}/repo`));
      await shOk(
        `cd ${q(`${m.dir}/repo`)} && ${git} init -q && ${git} add -A && ${git} commit -qm one && ` +
          `printf more >> a/f2 && ${git} mv a/f3 a/f3b && ${git} commit -qam two && ${git} gc -q`,
      );
      const check = async (): Promise<string> => {
        await shOk(`cd ${q(`${m.dir}/repo`)} && git fsck --strict --no-progress`);
        assert.equal(await shOk(`cd ${q(`${m.dir}/repo`)} && git status --porcelain`), '');
        return shOk(`cd ${q(`${m.dir}/repo`)} && git log --format=%H:%s && git rev-parse HEAD^{tree}`);
      };
      const log = await check();
      await m.remount();
      assert.equal(await check(), log);
      await shOk(`git clone -q ${q(`${m.dir}/repo`)} ${q(`${m.dir}/clone`)} && cd ${q(`${m.dir}/clone`)} && git fsck --no-progress`);
    } finally {
      await m.stop();
    }
  });

  for (const mode of ['delete', 'wal'] as const) {
    it(`sqlite3 (${mode} journal): transactions, a rollback, integrity_check after remount`, async () => {
      const m = await programMount(`sqlite-${mode}`);
      try {
        const db = q(`${m.dir}/t.db`);
        await shOk(
          `sqlite3 ${db} ${q(
            `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);` +
              `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000) ` +
              `INSERT INTO t(v) SELECT hex(randomblob(40)) FROM n;` +
              `BEGIN; DELETE FROM t WHERE id % 2 = 0; UPDATE t SET v = 'x'; ROLLBACK;` +
              `BEGIN; UPDATE t SET v = 'y' WHERE id <= 100; COMMIT; CREATE INDEX tv ON t(v);`,
          )}`,
        );
        const state = (): Promise<string> =>
          shOk(`sqlite3 ${db} ${q(`PRAGMA integrity_check; SELECT count(*), sum(v = 'y'), sum(v = 'x') FROM t; PRAGMA journal_mode;`)}`);
        const want = `ok\n5000|100|0\n${mode}\n`;
        assert.equal(await state(), want);
        await controlRequest(m.dir, 'commit');
        await m.remount();
        assert.equal(await state(), want);
      } finally {
        await m.stop();
      }
    });
  }
});
