// The demo inbox page: lists what each mailbox received with its transport, shows a message, and escapes what the mail says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startDemoWeb, type DemoWeb } from '../../../connector/demo/demo-web.js';
import { startSmtpSink, type SmtpSink } from '../../../connector/demo/mail-sink.js';

describe('demo inbox', () => {
  let sink: SmtpSink;
  let web: DemoWeb;
  beforeAll(async () => {
    sink = await startSmtpSink({ mode: 'no-starttls', name: 'mx.plain.example.test' });
    web = await startDemoWeb([{ domain: 'plain.example.test', mx: 'mx.plain.example.test', tls: false, sink }]);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: sink.port, secure: false, ignoreTLS: true });
    await transport.sendMail({ from: 'care@clinic.example.test', to: 'a@plain.example.test', subject: 'A <b>secure</b> message is waiting', text: 'Open <script>alert(1)</script> the link.' });
    transport.close();
  });
  afterAll(async () => {
    await web?.close();
    await sink?.close();
  });

  it('lists each message with its recipient, subject and transport, escaped', async () => {
    const res = await fetch(`${web.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('plain.example.test');
    expect(html).toContain('a@plain.example.test');
    expect(html).toContain('A &#60;b&#62;secure&#60;/b&#62; message is waiting');
    expect(html).toContain('no TLS');
    expect(html).not.toContain('<b>secure</b>');
  });

  it('shows one message raw and escaped, and 404 for one that does not exist', async () => {
    const html = await (await fetch(`${web.url}/inbox/0/0`)).text();
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).not.toContain('<script>');
    expect((await fetch(`${web.url}/inbox/0/9`)).status).toBe(404);
    expect((await fetch(`${web.url}/inbox/0/0`, { method: 'POST' })).status).toBe(405);
  });
});
