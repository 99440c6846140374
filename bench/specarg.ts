/**
 * A JSON spec on a child process's command line. Linux caps one argument at 128 KiB, and a reader
 * spec listing 5,000 paths is longer: such a spec goes through a temporary file, passed as
 * `@<path>` and removed by the child once read.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Specs up to this many bytes go on the command line itself. */
const ARG_LIMIT = 64 * 1024;

/** The argument that carries `spec` to a child. */
export function specArg(spec: unknown): string {
  const json = JSON.stringify(spec);
  if (Buffer.byteLength(json) <= ARG_LIMIT) return json;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-spec-'));
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, json);
  return `@${file}`;
}

/** The spec a parent passed with `specArg` (its temporary file, if any, is removed). */
export function readSpecArg<T>(arg: string | undefined): T {
  if (!arg?.startsWith('@')) return JSON.parse(arg ?? '{}') as T;
  const file = arg.slice(1);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } finally {
    rmSync(path.dirname(file), { recursive: true, force: true });
  }
}
