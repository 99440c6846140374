/**
 * A mount's log: one event per call (level, message, figures), by default one JSON line on
 * stderr (the daemon's log file when it runs in the background).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string, extra?: Record<string, unknown>) => void;

/** Default logger: one JSON line per event on stderr. */
export const stderrLogger: Logger = (level, msg, extra) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...extra })}\n`);
};
