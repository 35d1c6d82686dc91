// The demo DNS (and the tests' DNS server): loopback dns2 over UDP, port 0, answering MX, A, TXT and TLSA from a table the caller edits.
import dns2 from 'dns2';
import { TLSA_TYPE, type TlsaRecord } from '../delivery/dns-client.js';

const { Packet } = dns2;

export interface Zone {
  MX?: Array<{ exchange: string; priority: number }>;
  A?: string[];
  TXT?: string[];
  TLSA?: TlsaRecord[];
}

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for config.dnsServers. */
  address: string;
  port: number;
  /** Records by lower-case name; edit freely between look-ups. */
  zones: Map<string, Zone>;
  /** Names asked, in order, with their type. */
  queries: Array<{ name: string; type: number }>;
  close(): Promise<void>;
}

/** A TXT value as RFC 1035 character-strings of at most 255 octets (a DKIM key is longer than one). */
function characterStrings(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 255) out.push(text.slice(i, i + 255));
  return out.length ? out : [''];
}

export async function startDnsServer(zones: Record<string, Zone> = {}): Promise<TestDnsServer> {
  const table = new Map(Object.entries(zones).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: TestDnsServer['queries'] = [];
  const server = dns2.createUDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    const [question] = request.questions;
    if (!question) return void send(response);
    const name = question.name.toLowerCase().replace(/\.$/, '');
    queries.push({ name, type: question.type });
    const zone = table.get(name);
    if (!zone) {
      response.header.rcode = 3;
      return void send(response);
    }
    const base = { name: question.name, class: Packet.CLASS.IN, ttl: 60 };
    if (question.type === Packet.TYPE.MX) for (const mx of zone.MX ?? []) response.answers.push({ ...base, type: Packet.TYPE.MX, exchange: mx.exchange, priority: mx.priority } as never);
    if (question.type === Packet.TYPE.A) for (const address of zone.A ?? []) response.answers.push({ ...base, type: Packet.TYPE.A, address } as never);
    if (question.type === Packet.TYPE.TXT) for (const text of zone.TXT ?? []) response.answers.push({ ...base, type: Packet.TYPE.TXT, data: characterStrings(text) } as never);
    if (question.type === TLSA_TYPE)
      for (const t of zone.TLSA ?? [])
        response.answers.push({ ...base, type: TLSA_TYPE, data: Buffer.concat([Buffer.from([t.usage, t.selector, t.matchingType]), t.data]) } as never);
    send(response);
  });
  await server.listen(0, '127.0.0.1');
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    zones: table,
    queries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
