// Where the background keeps its state: the bearer token in storage.session (memory, trusted contexts only), admin settings that are not PHI in storage.local.
import type { Storage } from 'webextension-polyfill';

/** Settings kept across browser restarts. None of them is PHI or a secret. */
export interface Settings {
  connectorUrl: string | null;
  /** EHR origins an admin granted (e.g. "https://ehr.example.org"). */
  ehrOrigins: string[];
  /** Seconds without input after which the user is signed out. */
  idleSeconds: number;
}

/** The signed-in session; lives only in storage.session. */
export interface StoredSession {
  token: string;
  username: string;
  role: 'admin' | 'marketer' | 'clinician';
  expiresAt: string;
  /** The connector's sign-in answer said the password was a one-time one that must be changed first (never the password itself). */
  passwordChangeRequired?: boolean;
}

export const defaultIdleSeconds = 15 * 60;

export interface SessionStore {
  settings(): Promise<Settings>;
  updateSettings(change: Partial<Settings>): Promise<Settings>;
  session(now?: Date): Promise<StoredSession | null>;
  saveSession(session: StoredSession): Promise<void>;
  clearSession(): Promise<void>;
}

export function sessionStore(local: Storage.StorageArea, session: Storage.StorageArea): SessionStore {
  const settings = async (): Promise<Settings> => {
    const raw = (await local.get(['connectorUrl', 'ehrOrigins', 'idleSeconds'])) as Partial<Settings>;
    return {
      connectorUrl: typeof raw.connectorUrl === 'string' ? raw.connectorUrl : null,
      ehrOrigins: Array.isArray(raw.ehrOrigins) ? raw.ehrOrigins.filter((o): o is string => typeof o === 'string') : [],
      idleSeconds: typeof raw.idleSeconds === 'number' && raw.idleSeconds >= 60 ? raw.idleSeconds : defaultIdleSeconds,
    };
  };
  return {
    settings,
    async updateSettings(change) {
      await local.set(change);
      return settings();
    },
    async session(now = new Date()) {
      const { session: stored } = (await session.get('session')) as { session?: StoredSession };
      if (!stored) return null;
      if (Date.parse(stored.expiresAt) <= now.getTime()) {
        await session.remove('session');
        return null;
      }
      return stored;
    },
    async saveSession(stored) {
      await session.set({ session: stored });
    },
    async clearSession() {
      await session.remove('session');
    },
  };
}
