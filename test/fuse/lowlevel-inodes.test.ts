/**
 * The native mount's inode table at the size of a volume (src/fuse/lowlevel-inodes.ts): with
 * readdirplus every entry listed becomes a kernel inode, so `ls -R` of 1,000,000 files makes the
 * table hold 1,000,000. Its memory per inode bounds the daemon's RSS (the full bench measured
 * 753.9 MiB at 1,000,000 files with ~360 bytes per inode; goal < 300 MiB).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { InodeTable } from '../../src/fuse/lowlevel.js';
import { child } from '../../src/fuse/lowlevel-inodes.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapUsed = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

/** Fills `t` as readdirplus of `dirs` directories of 1,000 files does (paths built from the listing's names). */
function fill(t: InodeTable, dirs: number): void {
  for (let d = 0; d < dirs; d++) {
    const dir = `/d${String(d).padStart(4, '0')}`;
    const di = t.ensure(dir);
    t.ref(di);
    t.setType(di, 0o040755);
    for (let i = d * 1000; i < (d + 1) * 1000; i++) {
      const p = child(dir, `file-number-${i}.txt`);
      const ino = t.peek(p) ?? t.ensure(p);
      t.ref(ino);
      t.setType(ino, 0o100644);
    }
  }
}

describe('InodeTable memory', () => {
  it('holds 200,000 inodes in under 160 bytes each, names longer than a slice view included', () => {
    const before = heapUsed();
    const t = new InodeTable();
    fill(t, 200);
    const per = (heapUsed() - before) / t.size;
    assert.equal(t.size, 200_201);
    assert.equal(t.path(t.peek('/d0007/file-number-7001.txt')!), '/d0007/file-number-7001.txt');
    assert.ok(per < 160, `${per.toFixed(0)} bytes per inode`);
  });

  it('forgetting every inode gives the memory back (no bare directories or names left)', () => {
    const t = new InodeTable();
    fill(t, 20);
    const inos = [...t.entries()].map(([, ino]) => ino).filter((i) => i !== 1);
    for (const ino of inos) t.forget(ino, 1);
    assert.equal(t.size, 1);
    assert.deepEqual([...t.entries()], [['/', 1]]);
  });
});
