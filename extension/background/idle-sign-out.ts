// Signs the user out when the machine goes idle or locks: a walk-away must not leave a signed-in PHI tool behind.
import type { Idle } from 'webextension-polyfill';

export type IdleApi = Pick<Idle.Static, 'setDetectionInterval' | 'onStateChanged'>;

/** Applies the idle limit now and whenever `limitChanged` fires; calls `signOut` on idle or locked. */
export function watchIdle(idle: IdleApi, idleSeconds: () => Promise<number>, signOut: () => Promise<void>): { applyLimit(): Promise<void> } {
  const applyLimit = async () => {
    idle.setDetectionInterval(await idleSeconds());
  };
  idle.onStateChanged.addListener((state) => {
    if (state !== 'active') void signOut();
  });
  return { applyLimit };
}
