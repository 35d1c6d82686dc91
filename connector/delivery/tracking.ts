// Open and click tracking through opaque tokens: targets stay server-side (sealed), no PHI in any URL, machine prefetch (Apple MPP, Google/Yahoo proxies, scanners) flagged apart from people.
import { createHash, randomBytes } from 'node:crypto';
import { fail } from '../errors.js';
import type { FieldCipher } from '../store/cipher.js';
import { loadQueries, type Db } from '../store/db.js';
import type { OutboxMessage } from './outbox.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertTrackingTokens', 'trackingToken', 'insertTrackingEvent', 'trackingStats', 'campaignStates'] as const);

export type Agent = 'human' | 'apple-mpp' | 'google-proxy' | 'yahoo-proxy' | 'scanner';

export interface RequestInfo {
  userAgent?: string;
  ip?: string;
  method?: string;
}

/** Who fetched: mail-provider proxies and link scanners fetch without a person reading. */
export function classifyAgent(req: RequestInfo): Agent {
  const ua = req.userAgent ?? '';
  if (/GoogleImageProxy|ggpht\.com/i.test(ua)) return 'google-proxy';
  if (/YahooMailProxy/i.test(ua)) return 'yahoo-proxy';
  // Apple Mail Privacy Protection fetches from Apple's 17.0.0.0/8 with a bare "Mozilla/5.0".
  if (/^17\.\d+\.\d+\.\d+$/.test(req.ip ?? '') || ua.trim() === 'Mozilla/5.0') return 'apple-mpp';
  if (req.method === 'HEAD' || ua === '' || /bot|crawler|spider|scanner|barracuda|mimecast|proofpoint|safelinks|urldefense|python-requests|curl|wget|go-http-client/i.test(ua)) return 'scanner';
  return 'human';
}

export interface CampaignStats {
  states: Record<string, number>;
  opens: { human: number; machine: number; uniqueHuman: number };
  clicks: { human: number; machine: number; uniqueHuman: number };
}

export interface TrackingDeps {
  db: Db;
  cipher: FieldCipher;
  /** Base URL of the public routes (config.publicUrl). */
  publicUrl: string;
  now?: () => Date;
}

export interface Tracking {
  /** Rewrites http(s) links to click tokens and appends the open pixel; returns the new HTML. */
  instrument(message: OutboxMessage, html: string): Promise<string>;
  /** The same for many messages, with one insert of all their tokens; answers in the order given. */
  instrumentMany(items: ReadonlyArray<{ message: OutboxMessage; html: string }>): Promise<string[]>;
  /** The pixel route: records the open, returns the 1×1 GIF. */
  handleOpen(token: string, req: RequestInfo): Promise<{ status: number; contentType: string; body: Buffer }>;
  /** The click route: records the click, redirects to the stored target. */
  handleClick(token: string, req: RequestInfo): Promise<{ status: number; location: string }>;
  campaignStats(campaignId: string): Promise<CampaignStats>;
}

const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const sha256 = (s: string) => createHash('sha256').update(s).digest();
const newToken = () => randomBytes(16).toString('base64url');

export function createTracking(deps: TrackingDeps): Tracking {
  const now = deps.now ?? (() => new Date());
  const base = deps.publicUrl.replace(/\/$/, '');
  const sealAt = (hash: Buffer) => ({ table: 'tracking_tokens', column: 'target_sealed', rowId: hash.toString('hex') });

  const lookup = async (token: string, kind: 'open' | 'click') => {
    if (!/^[A-Za-z0-9_-]{22}$/.test(token)) throw fail('NOT_FOUND', 'unknown tracking link');
    const hash = sha256(token);
    const [row] = await deps.db.query<{ kind: string; outbox_id: unknown; campaign_id: string; target_sealed: Uint8Array | null }>(q.trackingToken, [hash]);
    if (!row || row.kind !== kind) throw fail('NOT_FOUND', 'unknown tracking link');
    return { hash, row };
  };
  const record = async (row: { outbox_id: unknown; campaign_id: string }, kind: 'open' | 'click', req: RequestInfo) => {
    const agent = classifyAgent(req);
    await deps.db.query(q.insertTrackingEvent, [String(row.outbox_id), row.campaign_id, kind, agent, agent !== 'human', now()]);
  };

  const instrumentMany: Tracking['instrumentMany'] = async (items) => {
    const hashes: Buffer[] = [];
    const kinds: string[] = [];
    const targets: Array<Buffer | null> = [];
    const outboxIds: string[] = [];
    const campaignIds: string[] = [];
    const out = items.map(({ message, html }) => {
      const add = (kind: 'open' | 'click', target?: string) => {
        const token = newToken();
        const hash = sha256(token);
        hashes.push(hash);
        kinds.push(kind);
        targets.push(target ? deps.cipher.seal(target, sealAt(hash)) : null);
        outboxIds.push(message.id);
        campaignIds.push(message.campaignId);
        return token;
      };
      const rewritten = html.replace(/(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?:\/\/[^"']+)\2/gi, (_m, head: string, quote: string, url: string) => {
        const target = url.replace(/&amp;/g, '&');
        return `${head}${quote}${base}/t/c/${add('click', target)}${quote}`;
      });
      const pixel = `<img src="${base}/t/o/${add('open')}" width="1" height="1" alt="" style="display:block;border:0">`;
      return /<\/body>/i.test(rewritten) ? rewritten.replace(/<\/body>/i, `${pixel}</body>`) : `${rewritten}${pixel}`;
    });
    if (hashes.length) {
      const at = now();
      await deps.db.query(q.insertTrackingTokens, [hashes, kinds, outboxIds, campaignIds, targets, hashes.map(() => at)]);
    }
    return out;
  };

  return {
    async instrument(message, html) {
      return (await instrumentMany([{ message, html }]))[0]!;
    },
    instrumentMany,
    async handleOpen(token, req) {
      try {
        const { row } = await lookup(token, 'open');
        await record(row, 'open', req);
      } catch {
        // An unknown pixel still answers with the pixel: nothing to learn from probing.
      }
      return { status: 200, contentType: 'image/gif', body: PIXEL };
    },
    async handleClick(token, req) {
      const { hash, row } = await lookup(token, 'click');
      await record(row, 'click', req);
      return { status: 302, location: deps.cipher.openText(row.target_sealed!, sealAt(hash)) };
    },
    async campaignStats(campaignId) {
      const rows = await deps.db.query<{ kind: string; machine: boolean; events: number; messages: number }>(q.trackingStats, [campaignId]);
      const states = await deps.db.query<{ state: string; n: number }>(q.campaignStates, [campaignId]);
      const pick = (kind: string) => {
        const human = rows.find((r) => r.kind === kind && !r.machine);
        const machine = rows.find((r) => r.kind === kind && r.machine);
        return { human: Number(human?.events ?? 0), machine: Number(machine?.events ?? 0), uniqueHuman: Number(human?.messages ?? 0) };
      };
      return { states: Object.fromEntries(states.map((s) => [s.state, Number(s.n)])), opens: pick('open'), clicks: pick('click') };
    },
  };
}
