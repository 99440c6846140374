/**
 * A mount's log: one event per call (level, message, figures). On stderr it is a line a person
 * reads when stderr is a terminal (`cairn mount --foreground`), and one JSON object per line
 * otherwise (the background daemon's log file, pipes, log collectors); `CAIRN_LOG_FORMAT=json`
 * or `human` forces one.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string, extra?: Record<string, unknown>) => void;

/** One JSON object per event. */
export function jsonLine(level: LogLevel, msg: string, extra?: Record<string, unknown>, at = new Date()): string {
  return `${JSON.stringify({ time: at.toISOString(), level, msg, ...extra })}\n`;
}

/** A figure as a person reads it in a log line (`key=value`, strings quoted only when needed). */
function figure(key: string, v: unknown): string {
  const text = typeof v === 'string' ? (/^[\w./:@+-]+$/.test(v) ? v : JSON.stringify(v)) : JSON.stringify(v);
  return `${key}=${text}`;
}

/**
 * One event as a person reads it: `12:01:02 WARN  message  key=value …` (a stack trace, when
 * there is one, on the lines below).
 */
export function humanLine(level: LogLevel, msg: string, extra: Record<string, unknown> = {}, at = new Date()): string {
  const { error, ...rest } = extra;
  const figures = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => figure(k, v))
    .join(' ');
  const stack =
    typeof error === 'string' && error.includes('\n') ? `\n${error}` : error !== undefined ? ` error=${JSON.stringify(error)}` : '';
  return `${at.toTimeString().slice(0, 8)} ${level.toUpperCase().padEnd(5)} ${msg}${figures ? `  ${figures}` : ''}${stack}\n`;
}

/** Whether stderr gets human lines (see the module comment). */
export function humanStderr(env: NodeJS.ProcessEnv = process.env, isTTY = !!process.stderr.isTTY): boolean {
  if (env.CAIRN_LOG_FORMAT === 'json') return false;
  if (env.CAIRN_LOG_FORMAT === 'human') return true;
  return isTTY;
}

/** Default logger: stderr, human on a terminal, JSON lines otherwise. */
export const stderrLogger: Logger = (level, msg, extra) => {
  process.stderr.write(humanStderr() ? humanLine(level, msg, extra) : jsonLine(level, msg, extra));
};
