/**
 * Docker's volume plugin protocol over HTTP on a Unix socket (what podman's
 * `[engine.volume_plugins]` and Docker's `/run/docker/plugins/NAME.sock` speak): POST
 * `/Plugin.Activate` and `/VolumeDriver.*` with a JSON body, JSON answers, an error as
 * `{"Err": "..."}` alone (podman treats any other field of a failed Get as a found volume).
 *
 * Invariants: the socket is created mode 0600 (root-only); a stale socket file of a dead plugin is
 * replaced, a live one is not; answers never carry store credentials (the driver redacts).
 */
import http from 'node:http';
import net from 'node:net';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CairnError, asCairnError } from '../errors.js';
import { redactUrl, type VolumeDriver } from './driver.js';

export const DEFAULT_SOCKET = '/run/docker/plugins/cairn.sock';
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';

type Body = { Name?: string; ID?: string; Opts?: Record<string, string> | null };

/** Answers one protocol call (exported for unit tests). */
export async function dispatch(driver: VolumeDriver, route: string, body: Body): Promise<Record<string, unknown>> {
  const name = (): string => {
    if (typeof body.Name !== 'string' || !body.Name) throw new CairnError('INVALID_ARGUMENT', `${route} needs a Name`);
    return body.Name;
  };
  switch (route) {
    case '/Plugin.Activate':
      return { Implements: ['VolumeDriver'] };
    case '/VolumeDriver.Capabilities':
      return { Capabilities: { Scope: 'local' } };
    case '/VolumeDriver.Create':
      await driver.create(name(), body.Opts);
      return { Err: '' };
    case '/VolumeDriver.Remove':
      await driver.remove(name());
      return { Err: '' };
    case '/VolumeDriver.Mount':
      return { Mountpoint: await driver.mount(name(), String(body.ID ?? '')), Err: '' };
    case '/VolumeDriver.Unmount':
      await driver.unmount(name(), String(body.ID ?? ''));
      return { Err: '' };
    case '/VolumeDriver.Path':
      return { Mountpoint: await driver.path(name()), Err: '' };
    case '/VolumeDriver.Get':
      return { Volume: await driver.get(name()), Err: '' };
    case '/VolumeDriver.List':
      return { Volumes: await driver.list(), Err: '' };
    default:
      throw new CairnError('UNSUPPORTED', `unknown plugin call ${route}`);
  }
}

export interface PluginServer {
  readonly socket: string;
  close(): Promise<void>;
}

/**
 * Serves `driver` on the Unix socket `socket` until closed.
 *
 * @example
 *   const srv = await servePlugin(driver, '/run/docker/plugins/cairn.sock', console.error);
 */
export async function servePlugin(
  driver: VolumeDriver,
  socket: string,
  log: (msg: string) => void = () => undefined,
): Promise<PluginServer> {
  await fsp.mkdir(path.dirname(socket), { recursive: true, mode: 0o755 });
  await removeStaleSocket(socket);
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      raw += c;
      if (raw.length > 1 << 20) req.destroy();
    });
    req.on('end', () => {
      const route = (req.url ?? '').split('?')[0];
      let body: Body = {};
      try {
        body = raw.trim() ? (JSON.parse(raw) as Body) : {};
      } catch {
        body = {};
      }
      dispatch(driver, route, body).then(
        (answer) => send(res, answer),
        (err: unknown) => {
          const e = asCairnError(err, 'IO', `${route} failed`);
          const msg = redactUrl(String(e));
          log(`${route} ${body.Name ?? ''}: ${msg}`);
          send(res, { Err: msg });
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fsp.chmod(socket, 0o600);
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
        void fsp.unlink(socket).catch(() => undefined);
      }),
  };
}

function send(res: http.ServerResponse, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Removes `socket` if it is a socket file nobody listens on; ALREADY_EXISTS if a plugin answers. */
async function removeStaleSocket(socket: string): Promise<void> {
  const st = await fsp.lstat(socket).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) {
    throw new CairnError('ALREADY_EXISTS', `${socket} exists and is not a socket`, {
      path: socket,
      hint: 'remove it or pass --socket',
    });
  }
  const live = await new Promise<boolean>((resolve) => {
    const c = net.createConnection(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) {
    throw new CairnError('ALREADY_EXISTS', `a plugin already serves ${socket}`, {
      path: socket,
      hint: 'stop it first, or pass --socket',
    });
  }
  await fsp.unlink(socket);
}
