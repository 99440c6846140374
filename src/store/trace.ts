/**
 * A timeline of store GETs for profiling cold reads (`CAIRN_S3_TRACE=FILE`): one line per GET,
 * `pid start_ms first_byte_ms end_ms bytes in_flight_at_start key`, times from the process's start
 * (performance.now()). Lines are buffered and appended every second (unref'd timer) and at exit,
 * never on a read's path. Off (no cost beyond one check) when the variable is unset.
 */
import { appendFile } from 'node:fs/promises';
import { appendFileSync } from 'node:fs';

const FILE = process.env.CAIRN_S3_TRACE || '';
let lines: string[] = [];
let inFlight = 0;
let timer: NodeJS.Timeout | undefined;

/** Whether GETs are traced. */
export const tracing = FILE !== '';

function flush(): void {
  if (lines.length === 0) return;
  const text = lines.join('');
  lines = [];
  appendFile(FILE, text).catch(() => undefined);
}

/**
 * Starts tracing one GET; call the returned functions at its first byte and at its end.
 *
 * @example const t = traceGet('packs/abc'); … t.firstByte(); … t.end(body.length);
 */
export function traceGet(key: string): { firstByte(): void; end(bytes: number): void } {
  const start = performance.now();
  const at = inFlight++;
  let first = -1;
  if (!timer) {
    timer = setInterval(flush, 1000);
    timer.unref();
    process.once('exit', () => {
      if (lines.length) appendFileSync(FILE, lines.join('')); // at exit only: the loop is done
    });
  }
  return {
    firstByte(): void {
      if (first < 0) first = performance.now();
    },
    end(bytes: number): void {
      inFlight--;
      lines.push(
        `${process.pid} ${start.toFixed(1)} ${(first < 0 ? start : first).toFixed(1)} ${performance.now().toFixed(1)} ${bytes} ${at} ${key}\n`,
      );
    },
  };
}
