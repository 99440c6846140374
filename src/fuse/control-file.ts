/**
 * The control file: `commit`, `reload` and `status` through the mount itself, for processes that
 * cannot reach the daemon's abstract socket (another network namespace: any container).
 *
 * A process opens `<mount>/.cairn-control` for reading and writing, writes one command line and
 * reads one JSON line back on the same descriptor:
 *
 *   exec 3<>/data/.cairn-control; echo commit >&3; cat <&3
 *   {"ok":true,"op":"commit","seq":7,"result":{...}}
 *   {"ok":false,"op":"reload","error":{"code":"VOLUME_BUSY","message":"...","context":{...}}}
 *
 * This module is the binding-independent part: each open gets its own transcript (what was
 * written, followed by the replies), so a reply is read at the file position right after the
 * command whatever the position sharing of the descriptor, and concurrent users never see each
 * other's replies. A binding routes the control path here (see control-fuse.ts for fuse-native).
 *
 * Invariants:
 * - a write that completes a command line resolves only once that command has been answered and
 *   its reply appended (reads never wait, so only the write needs a long kernel timeout);
 * - the commands of one handle run in order; control handles are not session handles, so they
 *   never make a reload VOLUME_BUSY nor show in `status` openFiles;
 * - a handle holds at most MAX_TRANSCRIPT bytes (a runaway writer gets EFBIG).
 */
import { CairnError, Errno } from '../errors.js';
import { encodeError } from '../errors.js';
import type { ControlResponse } from './control.js';

/** Name of the control file at the mount root (never listed by readdir). */
export const CONTROL_NAME = '.cairn-control';
export const CONTROL_PATH = `/${CONTROL_NAME}`;

export type ControlFileOp = 'commit' | 'reload' | 'status';
export const CONTROL_FILE_OPS: readonly ControlFileOp[] = ['commit', 'reload', 'status'];

/** Largest transcript of one handle (commands plus replies). */
const MAX_TRANSCRIPT = 1 << 20;

/** One reply line: the control socket's answer plus the op and, when the result has one, the seq. */
export type ControlFileReply = ControlResponse & { op: string; seq?: number };

/** Formats the reply line of a command. */
export function formatReply(op: string, outcome: { result: unknown } | { error: unknown }): string {
  let reply: ControlFileReply;
  if ('result' in outcome) {
    const seq = (outcome.result as { seq?: unknown } | null)?.seq;
    reply = { ok: true, op, ...(typeof seq === 'number' ? { seq } : {}), result: outcome.result ?? null };
  } else {
    reply = { ok: false, op, error: encodeError(outcome.error) };
  }
  return `${JSON.stringify(reply)}\n`;
}

interface ControlHandle {
  transcript: Buffer;
  length: number;
  /** Bytes of the transcript already parsed into commands (or replies). */
  parsed: number;
  /** The commands of this handle, in order. */
  queue: Promise<void>;
}

/**
 * The control-file state of one mount. `handler` runs a command (the daemon's control handler);
 * its value is the reply's result, its error the reply's error.
 *
 * @example
 *   const cf = new ControlFile((op) => daemonHandle({ op }));
 *   const fh = cf.open();
 *   await cf.write(fh, 0, Buffer.from('status\n'));
 *   const reply = cf.read(fh, 7, 4096).toString(); // {"ok":true,"op":"status",...}
 *   cf.release(fh);
 */
export class ControlFile {
  private readonly handles = new Map<number, ControlHandle>();
  private next = 1;

  constructor(private readonly handler: (op: ControlFileOp) => Promise<unknown>) {}

  /** A new handle (one per open(2)). */
  open(): number {
    const fh = this.next++;
    this.handles.set(fh, { transcript: Buffer.alloc(256), length: 0, parsed: 0, queue: Promise.resolve() });
    return fh;
  }

  /** Open control handles (not counted as open files anywhere). */
  get openCount(): number {
    return this.handles.size;
  }

  /** Current transcript size of a handle (the file size its opener sees); 0 when unknown. */
  size(fh: number): number {
    return this.handles.get(fh)?.length ?? 0;
  }

  /**
   * Stores `data` at `offset`; every command line it completes is run, and the returned promise
   * resolves (with the byte count) once their replies are in the transcript.
   * Throws a CairnError with an errno (`errno` in context) for an unknown handle or a too long transcript.
   */
  async write(fh: number, offset: number, data: Buffer): Promise<number> {
    const h = this.must(fh);
    const end = offset + data.length;
    if (end > MAX_TRANSCRIPT) {
      throw new CairnError('TOO_LARGE', `the control file takes at most ${MAX_TRANSCRIPT} bytes per open`, {
        errno: Errno.EFBIG,
        hint: 'write one command line (commit, reload, status), read the reply, close',
      });
    }
    this.ensure(h, end);
    data.copy(h.transcript, offset);
    h.length = Math.max(h.length, end);
    const runs: Promise<void>[] = [];
    for (;;) {
      const nl = h.transcript.subarray(h.parsed, h.length).indexOf(0x0a);
      if (nl < 0) break;
      const line = h.transcript.toString('utf8', h.parsed, h.parsed + nl).trim();
      h.parsed += nl + 1;
      if (!line) continue;
      const run = h.queue.then(() => this.run(h, line));
      h.queue = run;
      runs.push(run);
    }
    await Promise.all(runs);
    return data.length;
  }

  /** Up to `len` bytes of the transcript at `offset` (empty at or past its end: EOF). */
  read(fh: number, offset: number, len: number): Buffer {
    const h = this.must(fh);
    if (offset >= h.length) return Buffer.alloc(0);
    return Buffer.from(h.transcript.subarray(offset, Math.min(h.length, offset + len)));
  }

  /** Forgets a handle (close(2)); a command still running finishes, its reply is dropped. */
  release(fh: number): void {
    this.handles.delete(fh);
  }

  private async run(h: ControlHandle, line: string): Promise<void> {
    const op = line.split(/\s+/)[0] as ControlFileOp;
    let reply: string;
    if (!CONTROL_FILE_OPS.includes(op)) {
      reply = formatReply(op, {
        error: new CairnError('INVALID_ARGUMENT', `unknown control command ${JSON.stringify(line.slice(0, 40))}`, {
          hint: `write one of: ${CONTROL_FILE_OPS.join(', ')}`,
        }),
      });
    } else {
      try {
        reply = formatReply(op, { result: await this.handler(op) });
      } catch (err) {
        reply = formatReply(op, { error: err });
      }
    }
    // Appended at the end, after whatever the opener wrote since (its position is there).
    const bytes = Buffer.from(reply);
    const end = Math.min(MAX_TRANSCRIPT, h.length + bytes.length);
    this.ensure(h, end);
    bytes.copy(h.transcript, h.length, 0, end - h.length);
    h.length = end;
    h.parsed = Math.max(h.parsed, end);
  }

  private ensure(h: ControlHandle, size: number): void {
    if (size <= h.transcript.length) return;
    const grown = Buffer.alloc(Math.min(MAX_TRANSCRIPT, Math.max(size, h.transcript.length * 2)));
    h.transcript.copy(grown, 0, 0, h.length);
    h.transcript = grown;
  }

  private must(fh: number): ControlHandle {
    const h = this.handles.get(fh);
    if (!h) throw new CairnError('CLOSED', `control handle ${fh} is not open`, { errno: Errno.EBADF });
    return h;
  }
}
