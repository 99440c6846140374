/**
 * `cairn oci-hook`: the OCI hook of per-container sessions (src/plugin/oci-hook.ts).
 * `cairn oci-hook install [--hooks-dir DIR]` writes its hooks.d files; the engine then runs
 * `cairn oci-hook createRuntime|poststop` with the container state on stdin.
 */
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { CairnError } from '../errors.js';
import { DEFAULT_HOOKS_DIR, createRuntime, installHooks, poststop } from '../plugin/oci-hook.js';
import { notice } from './output.js';

const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

async function stdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerOciHookCommand(program: Command): void {
  program
    .command('oci-hook <stage> [args...]')
    .description('OCI hook: a container annotated cairn.volumes=VOL:/path[:ro],… gets its own session of each')
    .option('--hooks-dir <dir>', `with "install": where to write the hooks (default ${DEFAULT_HOOKS_DIR})`)
    .addHelpText(
      'after',
      `
Stages: install (once per boot: writes the hooks.d files, makes the staging directory a shared mount),
createRuntime and poststop (run by the engine, container state on stdin).
Example:
  cairn oci-hook install
  podman run --annotation cairn.volumes=data:/data IMAGE sh -c 'echo hi > /data/x'`,
    )
    .action(async (stage: string, _args: string[], o: { hooksDir?: string }) => {
      const log = (msg: string): void => {
        process.stderr.write(`cairn oci-hook: ${msg}\n`);
      };
      switch (stage) {
        case 'install': {
          const files = await installHooks({ hooksDir: o.hooksDir, command: [process.execPath, CLI_MAIN] });
          notice(`wrote ${files.join(', ')}`);
          return;
        }
        case 'createRuntime':
          return createRuntime(await stdin(), log);
        case 'poststop':
          return poststop(await stdin(), log);
        default:
          throw new CairnError('INVALID_ARGUMENT', `unknown oci-hook stage ${JSON.stringify(stage)}`, {
            hint: 'install, createRuntime or poststop',
          });
      }
    });
}
