// The composition root: opens the store and builds every service from the configuration, once per process.
import { join } from 'node:path';
import type { Config } from './config.js';
import { createLogger, type Log } from './logger.js';
import { openDb, type Db } from './store/db.js';

export interface App {
  config: Config;
  log: Log;
  db: Db;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  log?: Log;
}

export async function openApp(config: Config, options: OpenAppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.logLevel, file: config.logFile });
  const db = await openDb(
    config.databaseUrl
      ? { databaseUrl: config.databaseUrl, schema: config.databaseSchema }
      : { dataDir: join(config.home, 'pglite') },
  );
  return {
    config,
    log,
    db,
    close: async () => {
      await db.close();
    },
  };
}
