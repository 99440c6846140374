/**
 * `cairn plugin`: serves the Docker volume plugin API (src/plugin) in the foreground until
 * SIGTERM/SIGINT, so that `podman volume create --driver cairn NAME` / `docker volume create -d
 * cairn NAME` and `-v NAME:/data` use Cairn volumes. Mounts are detached daemons and outlive the
 * plugin (a restarted plugin finds them) unless `--unmount-on-exit`.
 */
import path from 'node:path';
import { Command } from 'commander';
import { cairnHome } from '../config.js';
import { VolumeDriver } from '../plugin/driver.js';
import { DEFAULT_SOCKET, servePlugin } from '../plugin/server.js';
import { notice, UsageError } from './output.js';
import { describeError } from '../errors.js';
import { statusAll } from '../fuse/control.js';
import { serveMountsMetrics, parseListen, type MetricsSnapshot } from '../util/metrics.js';

type Globals = () => { store?: string };

export function registerPluginCommand(program: Command, g: Globals): void {
  program
    .command('plugin')
    .description('serve the Docker/podman volume plugin API (VolumeDriver) on a Unix socket, in the foreground')
    .option('--socket <path>', 'the plugin socket (podman: [engine.volume_plugins] cairn = "PATH")', DEFAULT_SOCKET)
    .option('--state-dir <dir>', 'plugin state and mount points (default $CAIRN_HOME/plugin)')
    .option('--unmount-on-exit', 'commit and unmount every plugin mount when the plugin stops')
    .option('--metrics <host:port>', "serve the plugin mounts' Prometheus metrics at http://HOST:PORT/metrics")
    .addHelpText(
      'after',
      `
Example (podman):
  cairn plugin &
  # /etc/containers/containers.conf:  [engine.volume_plugins]  cairn = "${DEFAULT_SOCKET}"
  podman volume create --driver cairn data
  podman run --rm -v data:/data --rootfs /srv/rootfs /bin/sh -c 'echo hi > /data/x'
Volume options (-o): store=URL, volume=NAME (attach another Cairn volume), ro=true, commit_interval=SECONDS`,
    )
    .action(async (o: { socket: string; stateDir?: string; unmountOnExit?: boolean; metrics?: string }) => {
      if (o.metrics !== undefined) {
        try {
          parseListen(o.metrics);
        } catch (err) {
          throw new UsageError(describeError(err), { cause: err });
        }
      }
      const log = (msg: string): void => {
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), msg })}\n`);
      };
      const stateDir = path.resolve(o.stateDir ?? path.join(cairnHome(), 'plugin'));
      const driver = new VolumeDriver({ stateDir, store: g().store, log });
      await driver.start();
      const server = await servePlugin(driver, path.resolve(o.socket), log);
      notice(`cairn plugin serving ${server.socket}`);
      // The plugin's mounts are daemons of their own: each scrape asks them for their figures.
      const mountsDir = path.join(stateDir, 'mounts') + path.sep;
      const metrics =
        o.metrics === undefined
          ? undefined
          : await serveMountsMetrics(o.metrics, async () =>
              (await statusAll())
                .filter((s) => s.mount.mountpoint.startsWith(mountsDir) && s.status?.metrics)
                .map((s) => ({ volume: s.mount.volume, mountpoint: s.mount.mountpoint, metrics: s.status!.metrics as MetricsSnapshot })),
            );
      if (metrics) notice(`metrics at ${metrics.url}`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await server.close();
      await metrics?.close();
      if (o.unmountOnExit) await driver.unmountAll();
      log('plugin stopped');
    });
}
