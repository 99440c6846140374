/**
 * The benchmark report's test fixture and page helpers (test/bench/*.test.ts): the hand-made
 * results file and the section of a rendered page under one heading.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResults } from '../../bench/results.js';

/** The repository root (this file is dist/test/helpers/benchpage.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A fresh copy of test/bench/fixtures/results.json. */
export async function fixture(): Promise<BenchResults> {
  return JSON.parse(await fsp.readFile(path.join(ROOT, 'test', 'bench', 'fixtures', 'results.json'), 'utf8')) as BenchResults;
}

/** The section of a markdown page from `heading` to the next heading of the same or a higher level. */
export function section(md: string, heading: string): string {
  const start = md.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `no ${heading}`);
  const level = heading.split(' ')[0]!;
  const rest = md.slice(start + heading.length + 1);
  const end = rest.search(new RegExp(`^#{1,${level.length}} `, 'm'));
  return end < 0 ? rest : rest.slice(0, end);
}
