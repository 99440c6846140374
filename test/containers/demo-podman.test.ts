/**
 * The podman example script (demo/podman.sh: two busybox containers sharing a volume through
 * `cairn plugin`) runs end to end and checks itself; skipped where podman is missing.
 */
import '../helpers/env.js';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, podmanMissing } from '../helpers/podman.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'demo', 'podman.sh');

it('demo/podman.sh: two busybox containers share a volume', { skip: await podmanMissing() }, async () => {
  const r = await exec('bash', [SCRIPT], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /podman demo complete/);
  assert.match(r.stdout, /"ok":true,"op":"commit"/);
});
