/**
 * A real store with one interleaving point: `hook` runs once (awaited) before the first call of
 * `method` whose key `when` accepts; every call goes to the real store. Tests use it to run one
 * GC (or a commit) at an exact point inside another, deterministically.
 *
 * Usage: const paused = pausedAt(store, 'get', (k) => k.includes('/log/'), () => otherGc());
 */
import type { ObjectStore } from '../../src/store/types.js';

export function pausedAt(
  store: ObjectStore,
  method: 'get' | 'put' | 'delete',
  when: (key: string) => boolean,
  hook: () => Promise<void>,
): ObjectStore {
  let fired = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === method) {
        return async (key: string, ...rest: unknown[]) => {
          if (!fired && when(key)) {
            fired = true;
            await hook();
          }
          return (v as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
