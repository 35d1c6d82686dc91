// Serves the Lightning-like and EHR-like pages over HTTPS on loopback with a certificate from our own test CA, chosen by Host header.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa } from '../../support/test-ca.js';

export interface HttpsPages {
  port: number;
  /** base64 SHA-256 of the leaf's SubjectPublicKeyInfo, for --ignore-certificate-errors-spki-list. */
  spkiHash: string;
  close(): Promise<void>;
}

export async function startHttpsPages(hosts: string[], page: (host: string, path: string) => string | null): Promise<HttpsPages> {
  const ca = createTestCa('Secure Outreach e2e CA');
  const leaf = ca.leaf(hosts);
  const server: Server = createServer({ key: leaf.key, cert: `${leaf.cert}${ca.cert}` }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    const html = hosts.includes(host) ? page(host, path) : null;
    if (html === null) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    spkiHash: createHash('sha256').update(leaf.spki).digest('base64'),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
