// The demo inbox on loopback: what each receiving mailbox got, and whether it came inside TLS (the notices link to the connector's escrow portal).
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DemoMailbox } from './demo-world.js';

export interface DemoWeb {
  url: string;
  close(): Promise<void>;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}.tls{color:#060}.plain{color:#a50}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

function headerOf(raw: string, name: string): string {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const m = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return m ? m[1]!.replace(/\r?\n[ \t]+/g, ' ') : '';
}

export async function startDemoWeb(mailboxes: readonly DemoMailbox[]): Promise<DemoWeb> {
  const inbox = (res: ServerResponse) => {
    const sections = mailboxes.map((m, b) => {
      const rows = m.sink.messages
        .map((msg, i) => {
          const raw = msg.raw.toString('utf8');
          return `<tr><td>${i + 1}</td><td>${escape(msg.to.join(', '))}</td><td><a href="/inbox/${b}/${i}">${escape(headerOf(raw, 'Subject') || '(no subject)')}</a></td><td class="${msg.secure ? 'tls' : 'plain'}">${msg.secure ? `TLS ${escape(msg.tls?.version ?? '')}` : 'no TLS'}</td></tr>`;
        })
        .join('');
      return `<h2>${escape(m.domain)} <small>(MX ${escape(m.mx)}, ${m.tls ? 'STARTTLS with a demo-CA certificate' : 'no STARTTLS'})</small></h2>
<p>${m.sink.messages.length} message(s)</p><table><tr><th>#</th><th>to</th><th>subject</th><th>transport</th></tr>${rows}</table>`;
    });
    page(res, 200, 'Demo inbox', sections.join(''));
  };

  const message = (res: ServerResponse, box: number, index: number) => {
    const msg = mailboxes[box]?.sink.messages[index];
    if (!msg) return page(res, 404, 'No such message', '<p><a href="/">Back to the inbox</a></p>');
    page(res, 200, `Message ${index + 1} to ${mailboxes[box]!.domain}`, `<p>${msg.secure ? 'Received inside TLS.' : 'Received in plaintext (no TLS).'} <a href="/">Back</a></p><pre>${escape(msg.raw.toString('utf8'))}</pre>`);
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const messageMatch = /^\/inbox\/(\d{1,3})\/(\d{1,6})$/.exec(path);
    if (req.method !== 'GET') return page(res, 405, 'Not allowed', '');
    if (path === '/' || path === '/inbox') return inbox(res);
    if (messageMatch) return message(res, Number(messageMatch[1]), Number(messageMatch[2]));
    page(res, 404, 'Not found', '<p><a href="/">The demo inbox</a></p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
