// Builds the SMART approval app page (dist/smart-app): one HTML page plus hashed assets the connector serves under /smart/app and /smart/assets.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { build, defineConfig, type InlineConfig } from 'vite';

const pageDir = dirname(fileURLToPath(import.meta.url));
export const defaultSmartAppDir = resolve(pageDir, '../../dist/smart-app');

function smartAppConfig(outDir: string): InlineConfig {
  return {
    configFile: false,
    root: pageDir,
    // The connector serves the assets at /smart/assets/<file>.
    base: '/smart/',
    logLevel: 'warn',
    plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false, reactAliasesEnabled: false })],
    build: {
      outDir,
      emptyOutDir: true,
      assetsDir: 'assets',
      target: 'es2022',
      minify: true,
      sourcemap: false,
      reportCompressedSize: false,
      // No inline preload helper: the page's CSP allows scripts from 'self' only.
      modulePreload: false,
      rolldownOptions: { input: join(pageDir, 'index.html') },
    },
  };
}

/** Builds the page into `outDir` (default dist/smart-app). */
export async function buildSmartApp(outDir = defaultSmartAppDir): Promise<string> {
  await build(smartAppConfig(outDir));
  return outDir;
}

// `vite build --config extension/smart-app/vite.config.ts` uses this.
export default defineConfig(smartAppConfig(defaultSmartAppDir));
