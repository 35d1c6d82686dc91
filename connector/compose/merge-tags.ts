// The merge-tag registry: every tag a template may use, its PHI class and its formatter (pure: the extension lists it).
import type { AppointmentFact, PatientFacts } from '../../fhir/patient-facts.js';

/**
 * `none`: the same for every recipient (practice details, links). `identity`: identifies the recipient or their
 * relationship with the practice (name, email, PCP, dates of service). `clinical`: reveals health information.
 */
export type PhiClass = 'none' | 'identity' | 'clinical';

export const phiClassRank: Record<PhiClass, number> = { none: 0, identity: 1, clinical: 2 };

export interface PracticeContext {
  name: string;
  phone?: string;
  /** The postal address printed in the footer (CAN-SPAM asks for one). */
  address?: string;
  website?: string;
  /** IANA zone appointment times are shown in (default UTC). */
  timeZone?: string;
}

export interface SenderContext {
  /** The verified sending address; From always uses it, whatever the display name. */
  address: string;
  /** The domain verified for this sender (DKIM, SPF); `address` must be on it. */
  verifiedDomain: string;
  /** The From display name when the template sets none, and when the PCP has no name. */
  displayName: string;
}

export interface MergeContext {
  practice: PracticeContext;
  sender: SenderContext;
  /** Per-recipient links made at dispatch (signed tokens, never PHI in the URL). */
  links?: { unsubscribe?: string; preferences?: string };
  /** The reference time for "next" and "last" (default now). */
  now?: Date;
}

/** What a formatter sees: the context plus the recipient's locale resolved once. */
export interface FormatContext extends MergeContext {
  locale: string;
  timeZone: string;
  now: Date;
}

export interface MergeTag {
  /** Canonical lower-case name, as written between brackets: `first name`. */
  name: string;
  phiClass: PhiClass;
  description: string;
  /** A synthetic example value for tag pickers. */
  example: string;
  /** The value for one recipient, or undefined when the facts lack it (the fallback, if any, is used). */
  format(facts: PatientFacts | undefined, ctx: FormatContext): string | undefined;
}

const nonEmpty = (s: string | undefined): string | undefined => {
  const v = s?.trim();
  return v ? v : undefined;
};

const dateOnly = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A FHIR date or dateTime in the recipient's locale; plain dates never shift across time zones. */
export function formatDate(value: string | undefined, ctx: FormatContext, withTime = false): string | undefined {
  if (!value) return undefined;
  const d = dateOnly.exec(value);
  if (d) {
    const date = new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])));
    return new Intl.DateTimeFormat(ctx.locale, { dateStyle: 'long', timeZone: 'UTC' }).format(date);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return undefined;
  const options: Intl.DateTimeFormatOptions = withTime
    ? { dateStyle: 'full', timeStyle: 'short', timeZone: ctx.timeZone }
    : { dateStyle: 'long', timeZone: ctx.timeZone };
  return new Intl.DateTimeFormat(ctx.locale, options).format(date);
}

/** A BCP-47 tag the runtime supports, else en-US. */
export function resolveLocale(language: string | undefined): string {
  if (!language) return 'en-US';
  try {
    return Intl.DateTimeFormat.supportedLocalesOf([language.replace('_', '-')])[0] ?? 'en-US';
  } catch {
    return 'en-US';
  }
}

function resolveTimeZone(zone: string | undefined): string {
  if (!zone) return 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    return 'UTC';
  }
}

export function formatContext(facts: PatientFacts | undefined, ctx: MergeContext): FormatContext {
  return {
    ...ctx,
    locale: resolveLocale(facts?.language),
    timeZone: resolveTimeZone(ctx.practice.timeZone),
    now: ctx.now ?? new Date(),
  };
}

const pastStatuses = new Set(['fulfilled', 'arrived', 'checked-in']);
const upcomingStatuses = new Set(['booked', 'pending', 'proposed']);
const startOf = (a: AppointmentFact) => (a.start ? Date.parse(a.start) : Number.NaN);

function lastAppointment(facts: PatientFacts, now: Date): AppointmentFact | undefined {
  return facts.appointments
    .filter((a) => pastStatuses.has(a.status) && startOf(a) < now.getTime())
    .sort((a, b) => startOf(b) - startOf(a))[0];
}

function nextAppointment(facts: PatientFacts, now: Date): AppointmentFact | undefined {
  return facts.appointments
    .filter((a) => upcomingStatuses.has(a.status) && startOf(a) >= now.getTime())
    .sort((a, b) => startOf(a) - startOf(b))[0];
}

function formatA1c(facts: PatientFacts | undefined, ctx: FormatContext): string | undefined {
  const a1c = facts?.a1c;
  if (!a1c || !Number.isFinite(a1c.value)) return undefined;
  const n = new Intl.NumberFormat(ctx.locale, { maximumFractionDigits: 1 }).format(a1c.value);
  if (!a1c.unit || a1c.unit === '%') return `${n}%`;
  return `${n} ${a1c.unit}`;
}

const tags: MergeTag[] = [
  // --- the same for everyone
  { name: 'practice name', phiClass: 'none', description: "The practice's name.", example: 'Riverside Family Medicine', format: (_, c) => nonEmpty(c.practice.name) },
  { name: 'practice phone', phiClass: 'none', description: "The practice's main phone number.", example: '(555) 010-2000', format: (_, c) => nonEmpty(c.practice.phone) },
  { name: 'practice address', phiClass: 'none', description: "The practice's postal address.", example: '100 Main Street, Springfield', format: (_, c) => nonEmpty(c.practice.address) },
  { name: 'practice website', phiClass: 'none', description: "The practice's website.", example: 'https://riverside.example.org', format: (_, c) => nonEmpty(c.practice.website) },
  { name: 'sender name', phiClass: 'none', description: 'The sending team (the default From name).', example: 'Riverside Outreach', format: (_, c) => nonEmpty(c.sender.displayName) },
  { name: 'unsubscribe link', phiClass: 'none', description: 'The one-click unsubscribe URL for this recipient (holds no PHI).', example: 'https://outreach.example.org/u/…', format: (_, c) => nonEmpty(c.links?.unsubscribe) },
  { name: 'preferences link', phiClass: 'none', description: 'The email preferences URL for this recipient.', example: 'https://outreach.example.org/p/…', format: (_, c) => nonEmpty(c.links?.preferences) },
  { name: 'current year', phiClass: 'none', description: 'The year of sending (footers).', example: '2026', format: (_, c) => String(c.now.getUTCFullYear()) },
  // --- who the recipient is
  { name: 'first name', phiClass: 'identity', description: "The patient's first name.", example: 'Maria', format: (f) => nonEmpty(f?.given?.split(/\s+/)[0]) },
  { name: 'last name', phiClass: 'identity', description: "The patient's last name.", example: 'Gonzalez', format: (f) => nonEmpty(f?.family) },
  {
    name: 'full name',
    phiClass: 'identity',
    description: "The patient's given and family names.",
    example: 'Maria Gonzalez',
    format: (f) => nonEmpty([f?.given, f?.family].filter(Boolean).join(' ')),
  },
  { name: 'email', phiClass: 'identity', description: "The patient's email address.", example: 'maria@example.net', format: (f) => nonEmpty(f?.email) },
  { name: 'pcp name', phiClass: 'identity', description: "The patient's primary care provider.", example: 'Dr. Amara Osei', format: (f) => nonEmpty(f?.pcp?.name) },
  {
    name: 'last appointment date',
    phiClass: 'identity',
    description: 'The date of the last attended appointment (else the last visit).',
    example: 'March 4, 2026',
    format: (f, c) => (f ? formatDate(lastAppointment(f, c.now)?.start ?? f.lastVisit?.date, c) : undefined),
  },
  {
    name: 'last visit date',
    phiClass: 'identity',
    description: 'The date of the last finished visit.',
    example: 'March 4, 2026',
    format: (f, c) => formatDate(f?.lastVisit?.date, c),
  },
  {
    name: 'next appointment',
    phiClass: 'identity',
    description: 'The date and time of the next booked appointment, in the practice time zone.',
    example: 'Tuesday, December 1, 2026 at 9:30 AM',
    format: (f, c) => (f ? formatDate(nextAppointment(f, c.now)?.start, c, true) : undefined),
  },
  {
    name: 'next appointment date',
    phiClass: 'identity',
    description: 'The date of the next booked appointment.',
    example: 'December 1, 2026',
    format: (f, c) => (f ? formatDate(nextAppointment(f, c.now)?.start, c) : undefined),
  },
  // --- health information
  { name: 'last a1c', phiClass: 'clinical', description: 'The latest HbA1c result.', example: '7.4%', format: formatA1c },
  { name: 'last a1c date', phiClass: 'clinical', description: 'The date of the latest HbA1c result.', example: 'February 2, 2026', format: (f, c) => formatDate(f?.a1c?.date, c) },
  {
    name: 'next appointment type',
    phiClass: 'clinical',
    description: 'What the next booked appointment is for.',
    example: 'Diabetes follow-up',
    format: (f, c) => {
      const type = f ? nextAppointment(f, c.now)?.types[0] : undefined;
      return nonEmpty(type?.display);
    },
  },
];

const byName = new Map(tags.map((t) => [t.name, t]));

/** Every registered tag, in the order a tag picker lists them. */
export const mergeTags: readonly MergeTag[] = tags;

/** `[First  Name]` and `[first name]` are the same tag. */
export function normalizeTagName(raw: string): string {
  return raw.trim().replace(/\s+/g, ' ').toLowerCase();
}

export function findMergeTag(name: string): MergeTag | undefined {
  return byName.get(normalizeTagName(name));
}

/** The registry as data (for the extension's tag picker and the API). */
export function mergeTagCatalog(): Array<Pick<MergeTag, 'name' | 'phiClass' | 'description' | 'example'>> {
  return tags.map(({ name, phiClass, description, example }) => ({ name, phiClass, description, example }));
}

/** The registered tag nearest to an unknown name (for "did you mean"), when one is close enough. */
export function suggestMergeTag(raw: string): string | undefined {
  const name = normalizeTagName(raw);
  let best: { name: string; d: number } | undefined;
  for (const t of tags) {
    const d = editDistance(name, t.name);
    if (!best || d < best.d) best = { name: t.name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 4)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
