// The MV3 source manifest: Salesforce hosts required, EHR origins optional, a module worker, classic content scripts, valid for Firefox, and every file it names built.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));

describe('manifest.json', () => {
  it('is MV3 with a module service worker (Chrome, Edge) and background scripts (Firefox)', () => {
    expect(manifest.manifest_version).toBe(3);
    expect(manifest.background).toEqual({ service_worker: 'background.js', scripts: ['background.js'], type: 'module' });
    expect(manifest.browser_specific_settings.gecko.id).toMatch(/^[\w.-]+@[\w.-]+$/);
  });

  it('requires only the Salesforce hosts and leaves EHR origins to a runtime grant', () => {
    expect(manifest.host_permissions).toEqual(['https://*.lightning.force.com/*', 'https://*.my.salesforce.com/*']);
    expect(manifest.optional_host_permissions).toContain('https://*/*');
    expect(manifest.permissions).toEqual(expect.arrayContaining(['storage', 'idle', 'scripting']));
    expect(manifest.permissions).not.toContain('<all_urls>');
    expect(manifest.permissions).not.toContain('tabs');
    expect(manifest.content_scripts).toEqual([
      expect.objectContaining({ matches: manifest.host_permissions, js: ['content/salesforce.js'], all_frames: false }),
    ]);
  });

  it('allows only its own scripts on extension pages', () => {
    expect(manifest.content_security_policy.extension_pages).toMatch(/^script-src 'self'; object-src 'self'/);
  });

  it('names only files the build produces', () => {
    const built = readFileSync(join(root, 'extension/vite.config.ts'), 'utf8');
    const named = [manifest.background.service_worker, ...manifest.content_scripts.flatMap((c: { js: string[] }) => c.js), manifest.action.default_popup, manifest.options_ui.page, manifest.side_panel.default_path, manifest.sidebar_action.default_panel];
    for (const file of named) {
      if (file.endsWith('index.html')) expect(readFileSync(join(root, 'extension', file), 'utf8')).toContain('<div id="app">');
      else expect(built).toContain(`'${file}'`);
    }
  });
});
