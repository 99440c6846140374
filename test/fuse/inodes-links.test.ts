/**
 * The native mount's inode table with hard links (src/fuse/lowlevel-inodes.ts): every name of a
 * linked file is one inode; unlink, rename and forget of one name keep, move or drop only what
 * they should.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InodeTable } from '../../src/fuse/lowlevel.js';

describe('InodeTable with hard links', () => {
  it('maps every name of a file (its inode id) to one inode', () => {
    const t = new InodeTable();
    const a = t.ensure('/a', 'L');
    assert.equal(t.ensure('/d/b', 'L'), a);
    assert.notEqual(t.ensure('/c', 'M'), a);
    assert.notEqual(t.ensure('/e'), a);
    assert.equal(t.linkOf(a), 'L');
    // link(2): the new name joins the inode before the session's id is known to the table.
    const f = t.ensure('/f');
    t.alias(f, '/g');
    assert.equal(t.peek('/g'), f);
    assert.equal(t.ensure('/g', 'N'), f);
    assert.equal(t.ensure('/h', 'N'), f);
  });

  it('unlink and rename of one name keep the inode under its other names; forget drops them all', () => {
    const t = new InodeTable();
    const a = t.ensure('/a', 'L');
    t.ref(a, 2);
    t.ensure('/d/b', 'L');
    t.detach('/a');
    assert.equal(t.path(a), '/d/b');
    assert.equal(t.peek('/a'), undefined);
    t.rename('/d', '/x');
    assert.equal(t.path(a), '/x/b');
    assert.equal(t.ensure('/y', 'L'), a, 'a new name of the file still finds the inode');
    t.detach('/x/b');
    assert.equal(t.path(a), '/y');
    t.detach('/y');
    assert.equal(t.path(a), null, 'nameless until forgotten');
    t.ensure('/z', 'L');
    t.forget(a, 2);
    assert.equal(t.peek('/z'), undefined);
    assert.notEqual(t.ensure('/z', 'L'), a, 'numbers are never reused');
  });
});
