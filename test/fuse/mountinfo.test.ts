/** Unit tests of mountinfo parsing and Cairn mount lookup (no real mounts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cairnMountAt, findMounts, mountOf, parseMountinfo, socketNameFor, unescapeMountField } from '../../src/fuse/mountinfo.js';
import type { CairnError } from '../../src/errors.js';

const SAMPLE = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '42 27 0:39 / /mnt/vol rw,nosuid,nodev,relatime shared:7 - fuse cairn:weights rw,user_id=0,group_id=0',
  '43 27 0:40 / /mnt/with\\040space ro,nosuid,nodev,relatime - fuse.cairn cairn:data rw,user_id=0,group_id=0',
  '44 27 0:41 / /mnt/other rw,relatime - fuse sshfs#host: rw,user_id=0,group_id=0',
  '45 42 0:42 / /mnt/vol rw,relatime - fuse cairn:weights rw,user_id=0,group_id=0',
  'garbage line',
].join('\n');

describe('mountinfo', () => {
  it('parses fields, optional fields and escapes', () => {
    const e = parseMountinfo(SAMPLE);
    assert.equal(e.length, 6);
    assert.equal(e[2].device, '0:39');
    assert.equal(e[2].fstype, 'fuse');
    assert.equal(e[2].source, 'cairn:weights');
    assert.equal(e[3].mountpoint, '/mnt/with space');
    assert.deepEqual(e[3].options.includes('ro'), true);
    assert.equal(unescapeMountField('a\\011b\\012c\\134d'), 'a\tb\nc\\d');
  });

  it('finds Cairn mounts, topmost per directory, by volume', async () => {
    const entries = parseMountinfo(SAMPLE);
    const all = await findMounts(undefined, entries);
    assert.deepEqual(
      all.map((m) => [m.volume, m.mountpoint, m.device, m.readOnly]),
      [
        ['weights', '/mnt/vol', '0:42', false],
        ['data', '/mnt/with space', '0:40', true],
      ],
    );
    assert.equal((await findMounts('data', entries)).length, 1);
    assert.equal(all[0].socket, '\0cairn-0:42');
    assert.equal(socketNameFor('0:39'), '\0cairn-0:39');
  });

  it('resolves a path inside a mount to that mount, and refuses others', async () => {
    const entries = parseMountinfo(SAMPLE);
    assert.equal(mountOf('/mnt/vol/a/b', entries)?.device, '0:42');
    assert.equal(mountOf('/mnt/volume', entries)?.device, '8:1');
    assert.equal((await cairnMountAt('/mnt/with space/x', entries)).volume, 'data');
    await assert.rejects(
      cairnMountAt('/mnt/other', entries),
      (e: CairnError) => e.code === 'NOT_FOUND' && /not a cairn mount/.test(e.message),
    );
    await assert.rejects(cairnMountAt('/proc', entries), (e: CairnError) => e.code === 'NOT_FOUND');
  });
});
