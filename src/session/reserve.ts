/**
 * Space held back for the journal on a full disk: a `reserve` file of RESERVE_BYTES in the session
 * directory (a ballast). Without it, written data that fills the disk leaves no room for the
 * journal's next transaction, so nothing could be answered any more — not even the delete that
 * would free space.
 *
 * Invariants: the reserve is given up (deleted) only when a journal transaction finds the disk
 * full, and the transaction is then tried once more; while it is given up, anything that adds data
 * (a write, a new entry) is refused with NO_SPACE as long as the disk has less than twice the
 * reserve free, so the space it freed goes to deletes, renames and commits; once there is room the
 * reserve is made again. A disk too full to make it at open leaves the session without one (as
 * without this module). Free space is read with statfs at each check while the reserve is given up
 * (only then: a full disk is rare, and a cached figure would refuse writes after space came back).
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CairnError } from '../errors.js';

/** The reserve's size: room for thousands of journal transactions (each writes a few 4 KiB pages). */
export const RESERVE_BYTES = 8 * 1024 * 1024;

export class SpaceReserve {
  private readonly file: string;
  /** Whether the session holds a reserve at all (`make` was called). */
  private enabled = false;
  private given = false;
  private making: Promise<void> | undefined;

  /** @example const r = new SpaceReserve('/tmp/s1'); await r.make(); */
  constructor(
    private readonly dir: string,
    private readonly bytes = RESERVE_BYTES,
  ) {
    this.file = path.join(dir, 'reserve');
  }

  /** Whether the reserve is given up now (the disk filled up). */
  get givenUp(): boolean {
    return this.given;
  }

  /** Makes the reserve file when missing or short (written, so the blocks are the file's); best effort. */
  make(): Promise<void> {
    this.enabled = true;
    this.making ??= (async () => {
      const tmp = `${this.file}.tmp`;
      try {
        const st = await fs.stat(this.file).catch(() => undefined);
        if (st && st.size >= this.bytes) return;
        await fs.writeFile(tmp, Buffer.alloc(this.bytes));
        await fs.rename(tmp, this.file);
        this.given = false;
      } catch {
        await fs.rm(tmp, { force: true }).catch(() => undefined);
        this.given = true; // no room for it: the session runs without
      } finally {
        this.making = undefined;
      }
    })();
    return this.making;
  }

  /** A journal transaction found the disk full: gives the reserve up; true when that freed space (try again). */
  release(): boolean {
    if (!this.enabled || this.given) return false;
    this.given = true;
    try {
      fsSync.unlinkSync(this.file);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Before adding data (a write, a new entry): NO_SPACE while the reserve is given up and the disk
   * has less than twice its size free; with room again, makes the reserve anew (in the background).
   */
  check(what: string): void {
    if (!this.enabled || !this.given || this.making) return;
    let free = 0;
    try {
      const s = fsSync.statfsSync(this.dir);
      free = s.bavail * s.bsize;
    } catch {
      // unknown: as full
    }
    if (free < 2 * this.bytes) {
      throw new CairnError('NO_SPACE', `no space left on the disk of the session directory for ${what}`, {
        path: this.dir,
        hint: 'delete files (in the mount, or elsewhere on that disk) or commit, then retry',
      });
    }
    void this.make();
  }
}
