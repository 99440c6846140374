/**
 * The CLI's way into a volume: open it by name on the global `--store`, run, close (also on
 * failure).
 */
import { Volume } from '../volume/index.js';

/** The global options every command can read (`cairn --store URL …`). */
export type Globals = () => { store?: string };

/** Runs `fn` on the volume named `name`. @example await withVolume('data', g, (v) => v.listdir('/')); */
export async function withVolume<T>(name: string, g: Globals, fn: (v: Volume) => Promise<T>): Promise<T> {
  const vol = await Volume.fromName(name, { store: g().store });
  try {
    return await fn(vol);
  } finally {
    await vol.close();
  }
}
