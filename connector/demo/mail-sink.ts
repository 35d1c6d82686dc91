// The demo's receiving mail domains (and the tests' SMTP sinks): loopback smtp-server instances with STARTTLS with a given certificate, no STARTTLS, or STARTTLS that fails; records every message's bytes and whether it crossed TLS.
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export type SinkMode = 'starttls' | 'no-starttls' | 'starttls-broken';

export interface SinkMessage {
  from: string;
  to: string[];
  raw: Buffer;
  /** True when the DATA travelled inside TLS. */
  secure: boolean;
  /** Negotiated cipher and protocol when secure. */
  tls?: { name: string; version: string };
  /** SNI name the client asked for. */
  servername?: string;
}

export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  /** TCP connections accepted (to check pooling). */
  connections: number;
  /** Plaintext commands seen before TLS, per connection (EHLO, STARTTLS, MAIL FROM ...). */
  plaintextCommands: string[];
  /** Users that authenticated, and whether the session was inside TLS when they did. */
  logins: Array<{ user: string; secure: boolean }>;
  /** Set to answer RCPT TO with an SMTP error (e.g. 451 to exercise back-off; 550 to reject). */
  rcptReply?: (to: string) => { code: number; message: string } | undefined;
  /** Resolves when `count` messages have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface SinkOptions {
  mode: SinkMode;
  /** PEM key and certificate for STARTTLS (required for 'starttls' and 'starttls-broken'). */
  key?: string;
  cert?: string;
  /** Banner host name. */
  name?: string;
  /** Require AUTH PLAIN/LOGIN with these credentials (a smarthost). */
  auth?: { user: string; pass: string };
}

export async function startSmtpSink(options: SinkOptions): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const plaintextCommands: string[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const sink: SmtpSink = {
    port: 0,
    messages,
    connections: 0,
    plaintextCommands,
    logins: [],
    waitFor: (count, timeoutMs = 20_000) =>
      messages.length >= count
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`sink got ${messages.length}/${count} messages`)), timeoutMs);
            waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const serverOptions: SMTPServerOptions = {
    name: options.name ?? 'sink.test',
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    size: 50 * 1024 * 1024,
    ...(options.auth
      ? {
          authOptional: false,
          authMethods: ['PLAIN', 'LOGIN'],
          onAuth(auth, session, cb) {
            sink.logins.push({ user: auth.username ?? '', secure: Boolean(session.secure) });
            if (auth.username === options.auth!.user && auth.password === options.auth!.pass) return cb(null, { user: auth.username });
            return cb(new Error('Invalid credentials'));
          },
        }
      : {}),
    onConnect(_session, cb) {
      sink.connections++;
      cb();
    },
    onMailFrom(_address, session, cb) {
      if (!session.secure) plaintextCommands.push('MAIL FROM');
      cb();
    },
    onRcptTo(address, _session, cb) {
      const reply = sink.rcptReply?.(address.address);
      if (reply) {
        const err = new Error(reply.message) as Error & { responseCode: number };
        err.responseCode = reply.code;
        return cb(err);
      }
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const tlsInfo = session.tlsOptions as { name?: string; version?: string } | false;
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: Boolean(session.secure),
          ...(tlsInfo ? { tls: { name: tlsInfo.name ?? '', version: tlsInfo.version ?? '' } } : {}),
          ...((session as { servername?: string }).servername ? { servername: (session as { servername?: string }).servername } : {}),
        });
        for (const w of waiters.filter((w) => messages.length >= w.count)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
        cb();
      });
    },
  };
  if (options.mode === 'no-starttls') {
    serverOptions.hideSTARTTLS = true;
    serverOptions.disabledCommands = ['STARTTLS'];
  } else {
    if (!options.key || !options.cert) throw new Error('a STARTTLS sink needs key and cert');
    serverOptions.key = options.key;
    serverOptions.cert = options.cert;
    // Advertised and answered with 220, then the server speaks only TLS 1.0, which every client here refuses.
    if (options.mode === 'starttls-broken') Object.assign(serverOptions, { minVersion: 'TLSv1', maxVersion: 'TLSv1' });
  }
  const server = new SMTPServer(serverOptions);
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  sink.port = (server.server.address() as { port: number }).port;
  return sink;
}
