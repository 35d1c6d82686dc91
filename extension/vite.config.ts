// Builds the loadable MV3 folder (dist/extension): extension pages as ES modules, each content script as one classic IIFE, the background as a module worker; checks the gzip budget.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import preact from '@preact/preset-vite';
import { build, defineConfig, type InlineConfig, type Plugin } from 'vite';

const extensionDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(extensionDir, '..');
export const defaultOutDir = join(repoRoot, 'dist', 'extension');
/** The budget for everything the browser loads (gzip). */
export const budgetBytes = 150 * 1024;

export interface BuildOptions {
  outDir?: string;
  /** Extra required host permissions (the e2e pre-grants its stand-in EHR origin: Chrome's permission prompt cannot be answered headless). */
  extraHostPermissions?: string[];
  /** Print the size report (default true). */
  report?: boolean;
}

export interface BuildReport {
  outDir: string;
  files: { path: string; bytes: number; gzipBytes: number }[];
  totalGzipBytes: number;
}

const contentScripts = [
  { entry: 'content/salesforce.ts', name: 'SecureOutreachSalesforce', out: 'content/salesforce.js' },
  { entry: 'content/ehr.ts', name: 'SecureOutreachEhr', out: 'content/ehr.js' },
];
const pages = ['popup', 'options', 'sidepanel'];

const shared = (outDir: string): InlineConfig => ({
  configFile: false,
  root: extensionDir,
  logLevel: 'warn',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false, reactAliasesEnabled: false })],
  build: { outDir, emptyOutDir: false, target: 'es2022', minify: true, sourcemap: false, reportCompressedSize: false, modulePreload: false },
});

function withBuild(base: InlineConfig, extra: NonNullable<InlineConfig['build']>): InlineConfig {
  return { ...base, build: { ...base.build, ...extra } };
}

/** The manifest written to the output: the top-level manifest.json, plus any extra host permissions. */
export function outputManifest(extraHostPermissions: string[] = []): Record<string, unknown> {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'manifest.json'), 'utf8')) as { host_permissions?: string[] };
  if (extraHostPermissions.length) manifest.host_permissions = [...(manifest.host_permissions ?? []), ...extraHostPermissions];
  return manifest;
}

function sizeReport(outDir: string): BuildReport {
  const files: BuildReport['files'] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const bytes = readFileSync(path);
        files.push({ path: relative(outDir, path), bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length });
      }
    }
  };
  walk(outDir);
  files.sort((a, b) => b.gzipBytes - a.gzipBytes);
  return { outDir, files, totalGzipBytes: files.reduce((s, f) => s + f.gzipBytes, 0) };
}

/** Builds the rest once the pages are out: content scripts (IIFE each), the background worker (ES), the manifest; then the budget. */
function extensionPlugin(outDir: string, options: BuildOptions): Plugin {
  return {
    name: 'secure-outreach-extension',
    apply: 'build',
    async closeBundle() {
      const base = shared(outDir);
      for (const script of contentScripts) {
        await build(
          withBuild(base, {
            lib: { entry: join(extensionDir, script.entry), formats: ['iife'], name: script.name, fileName: () => script.out },
          }),
        );
      }
      // Not lib mode: lib-mode ES output keeps its whitespace, and the worker is loaded as is.
      await build(
        withBuild(base, {
          rolldownOptions: { input: join(extensionDir, 'background.ts'), output: { format: 'es', entryFileNames: 'background.js', codeSplitting: false } },
        }),
      );
      writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(outputManifest(options.extraHostPermissions), null, 2)}\n`);
      const report = sizeReport(outDir);
      if (options.report !== false) {
        const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
        const lines = report.files.map((f) => `  ${f.path.padEnd(36)} ${kb(f.bytes).padStart(10)} ${kb(f.gzipBytes).padStart(10)} gz`);
        process.stdout.write(`extension bundle (${outDir}):\n${lines.join('\n')}\n  total ${kb(report.totalGzipBytes)} gzipped (budget ${kb(budgetBytes)})\n`);
      }
      if (report.totalGzipBytes > budgetBytes) throw new Error(`extension bundle is ${report.totalGzipBytes} bytes gzipped, over the ${budgetBytes}-byte budget`);
      lastReport = report;
    },
  };
}

let lastReport: BuildReport | undefined;

function pagesConfig(outDir: string, options: BuildOptions): InlineConfig {
  const base = shared(outDir);
  return {
    ...withBuild(base, {
      emptyOutDir: true,
      rolldownOptions: {
        input: Object.fromEntries(pages.map((p) => [p, join(extensionDir, p, 'index.html')])),
        output: { entryFileNames: '[name]/[name].js', chunkFileNames: 'chunks/[name]-[hash].js', assetFileNames: 'assets/[name]-[hash][extname]' },
      },
    }),
    plugins: [...(base.plugins ?? []), extensionPlugin(outDir, options)],
  };
}

/** Builds the extension into `outDir` (default dist/extension) and returns the size report. */
export async function buildExtension(options: BuildOptions = {}): Promise<BuildReport> {
  const outDir = options.outDir ?? defaultOutDir;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  lastReport = undefined;
  await build(pagesConfig(outDir, options));
  if (!lastReport) throw new Error('the extension build did not finish');
  return lastReport;
}

// `vite build --config extension/vite.config.ts` (npm run build) uses this.
export default defineConfig(pagesConfig(defaultOutDir, {}));
