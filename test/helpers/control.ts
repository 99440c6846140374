/**
 * Checks of what `.cairn-control` answers (one JSON line per command), shared by the tests that
 * talk to it from a shell: in a mount namespace, in a podman container.
 */
import assert from 'node:assert/strict';

/** The control file's replies printed by a shell script, one JSON object per line. */
export function controlReplies(stdout: string): { ok: boolean; [k: string]: unknown }[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/**
 * Asserts that `reply` refused a reload as VOLUME_BUSY naming exactly `paths` as the open files
 * (the native binding also names the opener's pid; the control file itself is never listed).
 */
export function assertBusyWith(reply: { ok: boolean; [k: string]: unknown }, paths: string[]): void {
  assert.equal(reply.ok, false, JSON.stringify(reply));
  const error = reply.error as { code: string; context: { openFiles: { path: string }[] } };
  assert.equal(error.code, 'VOLUME_BUSY');
  assert.deepEqual(
    error.context.openFiles.map((o) => o.path),
    paths,
  );
}
