/**
 * The control socket of a mount: `commit`, `reload`, `status` and `unmount` requests from `cairn`
 * commands and the library, served by the daemon on the abstract socket named after the mount's
 * device (see mountinfo.ts).
 *
 * Protocol: the client sends one JSON line `{"op": OP, "args"?: {...}}`; the server answers one
 * JSON line, `{"ok": true, "result": ...}` or `{"ok": false, "error": WireError}` (errors.ts),
 * and closes. Errors cross the socket faithfully: the client rebuilds a CairnError with the same
 * code, message and context (VOLUME_BUSY keeps the open paths), so callers switch on codes.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CairnError, decodeError, encodeError, type WireError } from '../errors.js';
import { cairnMountAt, findMounts as findMountsInfo, type CairnMount } from './mountinfo.js';

export type ControlOp = 'commit' | 'reload' | 'status' | 'unmount';
export const CONTROL_OPS: readonly ControlOp[] = ['commit', 'reload', 'status', 'unmount'];

export interface ControlRequest {
  op: ControlOp;
  args?: Record<string, unknown>;
}

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: WireError };

/** Largest request line the server accepts. */
const MAX_REQUEST = 64 * 1024;

export interface ControlServer {
  readonly socket: string;
  /** Frees the socket name at once; requests being answered still get their answer. */
  stopListening(): void;
  /** Stops listening, ends idle connections, and resolves when every connection is closed. */
  close(): Promise<void>;
}

/**
 * Serves control requests on `socket` (an abstract name starting with NUL, or a path). The
 * handler's value is the result; its CairnError is the error answer.
 *
 * @example
 *   const srv = await startControlServer(socketNameFor('0:55'), async (req) => ({ op: req.op }));
 */
export async function startControlServer(
  socket: string,
  handler: (req: ControlRequest) => Promise<unknown>,
  opts: { busyWaitMs?: number } = {},
): Promise<ControlServer> {
  const conns = new Set<net.Socket>();
  /** Connections whose request is being answered: close() lets them finish. */
  const busy = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => conn.destroy());
    let buf = '';
    let done = false;
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      if (done) return;
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) reply(conn, { ok: false, error: encodeError(badRequest('request too long')) });
        return;
      }
      done = true;
      busy.add(conn);
      void answer(buf.slice(0, nl)).then((res) => {
        busy.delete(conn);
        reply(conn, res);
      });
    });
  });

  async function answer(line: string): Promise<ControlResponse> {
    try {
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        throw badRequest('request is not JSON');
      }
      if (!req || !CONTROL_OPS.includes(req.op)) throw badRequest(`unknown op ${JSON.stringify(req?.op)}`);
      return { ok: true, result: (await handler(req)) ?? null };
    } catch (err) {
      return { ok: false, error: encodeError(err, 'the daemon failed') };
    }
  }

  // A daemon that is shutting down may still hold the name of a device number the kernel has
  // already given to a new mount: wait for it to let go.
  const deadline = Date.now() + (opts.busyWaitMs ?? 10_000);
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => {
          server.off('error', reject);
          resolve();
        });
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let stopped: Promise<void> | undefined;
  const stopListening = (): Promise<void> => (stopped ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    socket,
    stopListening: () => {
      void stopListening();
    },
    close: async () => {
      const done = stopListening();
      for (const c of conns) if (!busy.has(c)) c.end();
      await done;
    },
  };
}

function reply(conn: net.Socket, res: ControlResponse): void {
  if (conn.destroyed) return;
  conn.end(`${JSON.stringify(res)}\n`);
}

function badRequest(why: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `bad control request: ${why}`, {
    hint: `send one JSON line {"op": ${CONTROL_OPS.map((o) => `"${o}"`).join('|')}}`,
  });
}

export interface ControlOptions {
  /** Give up after this long (UNAVAILABLE). Default: 10 s for status, 30 min otherwise. */
  timeoutMs?: number;
  args?: Record<string, unknown>;
}

/**
 * Sends one request to the daemon at a socket and returns its result; the daemon's error is
 * thrown as the same CairnError. No daemon listening -> UNAVAILABLE.
 */
export function requestSocket(socket: string, req: ControlRequest, timeoutMs: number, where = socket): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let buf = '';
    let settled = false;
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () =>
        finish(
          new CairnError('UNAVAILABLE', `the cairn daemon of ${where} did not answer ${req.op} within ${timeoutMs} ms`, {
            path: where,
            op: req.op,
            hint: 'check the daemon log; `fusermount -u DIR` detaches a hung mount',
          }),
        ),
      timeoutMs,
    );
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk: string) => {
      buf += chunk;
    });
    conn.on('end', () => {
      const line = buf.split('\n')[0];
      let res: ControlResponse;
      try {
        res = JSON.parse(line) as ControlResponse;
      } catch {
        return finish(
          new CairnError('IO', `the cairn daemon of ${where} closed the control connection without an answer`, {
            path: where,
            op: req.op,
            hint: 'the daemon may have exited; check its log',
          }),
        );
      }
      if (res.ok) finish(null, res.result);
      else finish(decodeError(res.error));
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      finish(
        new CairnError(
          'UNAVAILABLE',
          `no cairn daemon answers for ${where} (${err.code ?? err.message})`,
          {
            path: where,
            op: req.op,
            unreachable: true,
            hint: 'the daemon has exited or runs in another network namespace; `fusermount -u DIR` removes a dead mount',
          },
          { cause: err },
        ),
      );
    });
  });
}

/** Name of the control file at a mount root (see control-file.ts; kept here for clients). */
const CONTROL_FILE = '.cairn-control';

/**
 * Sends `op` through the control file of the mount at `mountpoint` (works from any network
 * namespace: containers). Same result and errors as the socket. Nothing here is synchronous.
 *
 * @example
 *   await requestFile('/data', 'commit', 60_000); // CommitResult
 */
export async function requestFile(mountpoint: string, op: 'commit' | 'reload' | 'status', timeoutMs: number): Promise<unknown> {
  const file = path.join(mountpoint, CONTROL_FILE);
  const unavailable = (why: string, cause?: unknown): CairnError =>
    new CairnError(
      'UNAVAILABLE',
      `no cairn daemon answers for ${mountpoint} through ${file} (${why})`,
      {
        path: mountpoint,
        op,
        hint: 'the daemon has exited (`fusermount -u DIR` removes a dead mount), or it predates the control file',
      },
      cause === undefined ? {} : { cause },
    );
  let fh: fsp.FileHandle | undefined;
  let timedOut = false;
  const talk = async (): Promise<string> => {
    try {
      fh = await fsp.open(file, 'r+');
    } catch (err) {
      throw unavailable((err as NodeJS.ErrnoException).code ?? String(err), err);
    }
    if (timedOut) throw unavailable('timed out');
    // The reply follows the command in the opener's transcript: read from where the write ended.
    const cmd = Buffer.from(`${op}\n`);
    await fh.write(cmd, 0, cmd.length, 0);
    const chunks: Buffer[] = [];
    let pos = cmd.length;
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return Buffer.concat(chunks).toString('utf8');
  };
  let timer: NodeJS.Timeout | undefined;
  const exchange = talk();
  try {
    // A hung daemon blocks open(2) and read(2) in the thread pool: give up on time regardless.
    const text = await Promise.race([
      exchange,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(unavailable(`no answer to ${op} within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]).catch((err: unknown) => {
      if (err instanceof CairnError) throw err;
      throw unavailable((err as NodeJS.ErrnoException).code ?? String(err), err);
    });
    let res: ControlResponse;
    try {
      res = JSON.parse(text.split('\n')[0]) as ControlResponse;
    } catch {
      throw new CairnError('IO', `the control file of ${mountpoint} answered ${JSON.stringify(text.slice(0, 80))}`, {
        path: mountpoint,
        op,
        hint: 'is this a cairn mount? check the daemon log',
      });
    }
    if (res.ok) return res.result;
    throw decodeError(res.error);
  } finally {
    clearTimeout(timer);
    // Close once the exchange is over (at once, or when a hung daemon lets go).
    void exchange.catch(() => undefined).finally(() => void fh?.close().catch(() => undefined));
  }
}

/**
 * Sends `op` to the daemon serving the mount at (or containing) `dir`: over its socket, or, when
 * the socket is out of reach (another network namespace, e.g. inside a container), through the
 * mount's control file.
 *
 * @example
 *   const r = await controlRequest('/mnt/vol', 'commit'); // CommitResult
 *   await controlRequest('/mnt/vol', 'reload');           // throws VOLUME_BUSY with open files
 */
export async function controlRequest(dir: string, op: ControlOp, opts: ControlOptions = {}): Promise<unknown> {
  const m = await cairnMountAt(dir);
  const timeoutMs = opts.timeoutMs ?? (op === 'status' ? 10_000 : 30 * 60_000);
  try {
    return await requestSocket(m.socket, { op, ...(opts.args ? { args: opts.args } : {}) }, timeoutMs, m.mountpoint);
  } catch (err) {
    const unreachable = err instanceof CairnError && err.code === 'UNAVAILABLE' && !!err.context.unreachable;
    if (op === 'unmount' || !unreachable) throw err;
    return requestFile(m.mountpoint, op, timeoutMs).catch((fileErr: unknown) => {
      // Neither way: report the socket's error (the usual case: the daemon is gone), noting the file's.
      if (fileErr instanceof CairnError && fileErr.code === 'UNAVAILABLE') {
        err.context.controlFile = fileErr.message;
        throw err;
      }
      throw fileErr;
    });
  }
}

/**
 * All Cairn mounts visible in this mount namespace (optionally of one volume).
 *
 * @example
 *   const mounts = await findMounts();          // [{ volume, mountpoint, device, socket, readOnly }]
 */
export async function findMounts(volumeName?: string): Promise<CairnMount[]> {
  return findMountsInfo(volumeName);
}

export type { CairnMount, WireError };

export interface MountStatus {
  mount: CairnMount;
  /** The daemon's status answer, when it answered. */
  status?: Record<string, unknown>;
  /** Why it did not (UNAVAILABLE for a dead daemon, …). */
  error?: WireError;
}

/**
 * Every Cairn mount visible here with its daemon's status (what `cairn status` without DIR
 * shows); a mount whose daemon does not answer is listed with the error.
 *
 * @example
 *   for (const m of await statusAll()) console.log(m.mount.mountpoint, m.status?.pending ?? m.error?.code);
 */
export async function statusAll(volumeName?: string, timeoutMs = 5000): Promise<MountStatus[]> {
  const mounts = await findMountsInfo(volumeName);
  return Promise.all(
    mounts.map(async (mount) => {
      try {
        const status = (await controlRequest(mount.mountpoint, 'status', { timeoutMs })) as Record<string, unknown>;
        return { mount, status };
      } catch (err) {
        return { mount, error: encodeError(err) };
      }
    }),
  );
}
