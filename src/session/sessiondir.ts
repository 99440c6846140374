/**
 * Session directories: where a session keeps its journal and staging files, and the lock that
 * keeps two live processes out of one directory.
 *
 * Invariants: at most one live process holds a session directory (a `lock` file naming its
 * pid, created with O_EXCL; a lock whose pid is gone is stale and taken over); a mount's
 * default directory is derived from the volume, the mountpoint and the mount namespace, so the
 * next mount of the same path in the same "container" finds (and recovers) it.
 */
import crypto from 'node:crypto';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CairnError } from '../errors.js';
import { sessionsDir } from '../config.js';

/** The directory of a mount's session: stable across restarts of the same mount. */
export async function mountSessionDir(volumeId: string, mountpoint: string): Promise<string> {
  const ns = await fs.readlink('/proc/self/ns/mnt').catch(() => 'mnt:[host]');
  const key = crypto
    .createHash('sha256')
    .update(`${path.resolve(mountpoint)}\0${ns}`)
    .digest('hex')
    .slice(0, 16);
  return path.join(sessionsDir(), volumeId, `mount-${key}`);
}

/** A fresh private directory for a library session; removed by its owner at close. */
export async function privateSessionDir(volumeId: string): Promise<string> {
  const dir = path.join(sessionsDir(), volumeId, `api-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the directory's lock; VOLUME_BUSY when another live process holds it. Returns the release function. */
export async function lockSessionDir(dir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (holder && holder !== process.pid && alive(holder)) {
        throw new CairnError('VOLUME_BUSY', `session directory ${dir} is in use by process ${holder}`, {
          path: dir,
          hint: 'unmount the other mount first, or use another mountpoint',
        });
      }
      await fs.rm(file, { force: true }); // stale: its process is gone
    }
  }
  throw new CairnError('VOLUME_BUSY', `cannot lock session directory ${dir}`, { path: dir });
}
