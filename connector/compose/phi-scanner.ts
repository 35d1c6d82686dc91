// The PHI scanner: finds identifiers and clinical content in free text, shared by the connector and the extension.
//
// Pure TypeScript (no Node built-ins): the extension runs it on every keystroke. A finding holds offsets, never the
// matched text, so that a finding can be logged or sent anywhere; callers slice the text themselves.
//
// Rules (what is a finding, and the judgment calls behind the exceptions):
// - SSN: xxx-xx-xxxx with valid area/group/serial, or digits after "SSN"/"social security". Always high.
// - MRN: an id after a record keyword (MRN, chart #, patient ID, member ID, policy number) is high; a bare run of
//   7-12 digits that is not a price, a date or a phone number is a medium "MRN-like number".
// - Dates of birth: any date (also month-day without a year) within a few words after DOB/date of birth/born/
//   birthday is high. A full date whose year is 1900..(this year - 3) is a medium "plausible birth date", unless
//   it follows a business-history word (since, founded, opened, established, effective, updated, ©). Ages over
//   89 ("92-year-old") are identifiers under Safe Harbor and count as dob. Event dates in the near past or the
//   future ("flu clinic on October 12, 2026") are not findings.
// - Phone numbers (NANP and +international) are findings, except toll-free numbers (800/833/844/855/866/877/888:
//   no patient has one), numbers right after organisational context ("call us at", "our office", "front desk",
//   "main line", "fax") which are the practice's own, and numbers on the caller's allow list.
// - Email addresses are findings, except role mailboxes (info@, appointments@, billing@, noreply@ ...) and the
//   allow list.
// - Street addresses ("12 Oak Street", PO boxes) are findings. After organisational context ("visit us at", "our
//   clinic at", "located at") the address is the practice's and is not a finding, with or without a ZIP code,
//   unless it names an apartment or unit (homes have those; practices have suites). Personal context ("your
//   address", "lives at", "home address") always makes it a high finding.
// - ICD-10 codes with a dot (E11.9) anywhere; without a dot (E11) only after ICD/dx/diagnosis code. SNOMED CT ids
//   only after SNOMED/SCTID. Always high.
// - Lab values: an analyte with a value ("A1C 9.2%", "glucose of 180 mg/dL", "BP 150/95"), a value then its analyte
//   ("9.2% A1C"), or a number with a clinical unit ("180 mg/dL"). A bare year after an analyte is not a value.
// - Condition and medication terms from the curated list in phi-terms.ts. High after personal context ("your",
//   "diagnosed", "prescribed", ...), medium otherwise: generic copy about a condition, sent to a segment, still
//   implies the recipient has it.
// Prices, times, opening hours, percentages off, years, suite numbers and ZIP codes alone are never findings.
import { conditionTerms, labAnalytes, labUnits, medicationTerms, type TermEntry } from './phi-terms.js';

export type PhiKind =
  | 'dob'
  | 'mrn'
  | 'ssn'
  | 'phone'
  | 'email'
  | 'address'
  | 'icd10'
  | 'snomed'
  | 'lab-value'
  | 'condition'
  | 'medication';

export type PhiCategory = 'identifier' | 'clinical';
export type Severity = 'high' | 'medium';

export interface Finding {
  /** UTF-16 offsets into the scanned text: `text.slice(start, end)` is the match. */
  start: number;
  end: number;
  kind: PhiKind;
  category: PhiCategory;
  severity: Severity;
  /** The rule that fired (stable id, safe to log). */
  rule: string;
}

export interface ScanOptions {
  /** The reference date for "plausible birth date" (default: now). */
  now?: Date;
  /** The practice's own contact details: never findings. */
  allow?: {
    phones?: readonly string[];
    emails?: readonly string[];
    addresses?: readonly string[];
  };
}

export const phiKinds: readonly PhiKind[] = [
  'dob', 'mrn', 'ssn', 'phone', 'email', 'address', 'icd10', 'snomed', 'lab-value', 'condition', 'medication',
];

const clinicalKinds = new Set<PhiKind>(['icd10', 'snomed', 'lab-value', 'condition', 'medication']);

export function categoryOf(kind: PhiKind): PhiCategory {
  return clinicalKinds.has(kind) ? 'clinical' : 'identifier';
}

// When two findings overlap, the more specific one wins.
const priority: Record<PhiKind, number> = {
  ssn: 11, mrn: 10, dob: 9, icd10: 8, snomed: 7, 'lab-value': 6, email: 5, phone: 4, address: 3, medication: 2, condition: 1,
};
const mrnLikeRule = 'mrn-like-number';

// --- shared fragments
const months = 'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const phrase = (s: string) => s.split(/\s+/).map(escapeRe).join('\\s+');

const personalContext = /\b(?:your|you|you're|youre|you've|yours|his|her|hers|my|mine|patient|pt|diagnosed|diagnosis|history of|hx|positive for|tested positive|prescribed|prescription|refill|refills|taking|dose|dosage|results?|lives at|resides)\b[^.!?\n]{0,40}$/i;
const orgContext = /(?:\b(?:call|text|reach|contact|email|write to|visit|find) us\b|\bour (?:\w+ ){0,2}(?:office|offices|clinic|clinics|practice|main line|line|team|number|front desk|pharmacy|location|locations|campus|center|centre|lab|hospital|address|building|hotline|helpline|nurse line)\b|\b(?:front desk|main line|care team|nurse line|hotline|helpline|scheduling line|appointment line|fax|located at|location at|visit|directions to|parking at|entrance on|stop by|come by)\b)[^.!?\n]{0,24}$/i;
const personalContactContext = /\b(?:your|his|her|my|patient(?:'s)?|home|cell|mobile|personal|lives at|resides at|emergency contact)\b[^.!?\n]{0,30}$/i;
const phoneContext = /\b(?:call|phone|tel|telephone|cell|mobile|text|fax|number|reach|contact)\b[^.!?\n]{0,20}$/i;

function before(text: string, start: number, n: number): string {
  return text.slice(Math.max(0, start - n), start);
}

// --- identifiers
const ssnFormatted = /(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])/g;
const ssnContext = /\b(?:ssn|ss#|social security(?:\s+(?:number|no\.?|#))?)\s*(?:(?:is|was|ending in|ends in|last four|last 4|of)\s*)*[:#-]?\s*((?:\d{3}[- ]?\d{2}[- ]?\d{4})|(?:x{3}-x{2}-\d{4})|\d{4})(?![\d-])/gi;
const mrnContext = /\b(?:mrn|med(?:ical)?\s*rec(?:ord)?s?(?:\s*(?:number|no\.?|#|id))?|chart\s*(?:number|no\.?|#|id)|patient\s*(?:id|number|no\.?|#)|pt\s*(?:id|#)|record\s*(?:number|no\.?|#)|member\s*(?:id|number|#)|subscriber\s*(?:id|number|#)|policy\s*(?:number|no\.?|#)|account\s*(?:number|no\.?|#)|acct\s*(?:no\.?|#)?)\s*(?:is|was)?\s*[:#=-]?\s*([A-Z]{0,4}-?\d[\dA-Z-]{3,15})(?![\w-])/gi;
const bareDigits = /(?<![\w$€£.,/:#+-])\d{7,12}(?![\w%]|[.,/]\d)/g;
const phoneNanp = /(?<![\w+.-])(?:\+?1[\s.-]?)?(?:\(([2-9]\d\d)\)\s?|([2-9]\d\d)[\s.-])(\d{3})[\s.-](\d{4})(?![\w-]|[.,]\d)/g;
const phoneIntl = /(?<![\w+])\+(?!1[\s.(-]*\d{3}[\s.)-])\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?![\w])/g;
const email = /(?<![\w.+%-])([A-Za-z0-9][A-Za-z0-9._%+-]{0,63})@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z])/g;
const streetSuffix = 'street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|trail|trl|square|sq|loop|alley|pike|plaza|crescent|row';
const street = new RegExp(
  `(?<![\\w$#.,/-])\\d{1,6}[A-Za-z]?\\s+((?:[A-Z0-9][\\w'.-]*\\s+){1,4}?)(?:${streetSuffix.split('|').map((s) => s[0]!.toUpperCase() + s.slice(1)).join('|')})\\b\\.?`,
  'g',
);
const unitTail = /^,?\s*(?:apt|apartment|unit|#)\.?\s*[A-Za-z0-9-]{1,6}\b/i;
const suiteTail = /^,?\s*(?:suite|ste|floor|fl)\.?\s*[A-Za-z0-9-]{1,6}\b/i;
const cityZipTail = /^,?\s*(?:[A-Z][A-Za-z.'-]*\s*){1,3},?\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b/;
const poBox = /\bP\.?\s?O\.?\s+Box\s+\d{1,6}\b/gi;
const streetStopwords = new Set(['on', 'your', 'the', 'our', 'a', 'an', 'in', 'to', 'for', 'of', 'and', 'at', 'by', 'with', 'is', 'my', 'off', 'all', 'more', 'new', 'free', 'get', 'per', 'every', 'each', 'this', 'that', 'from', 'or']);
const tollFree = new Set(['800', '833', '844', '855', '866', '877', '888']);
const roleMailboxes = new Set([
  'info', 'contact', 'hello', 'office', 'admin', 'support', 'help', 'appointments', 'appointment', 'appts', 'scheduling',
  'schedule', 'billing', 'frontdesk', 'front.desk', 'reception', 'noreply', 'no-reply', 'donotreply', 'do-not-reply',
  'marketing', 'news', 'newsletter', 'team', 'care', 'careteam', 'privacy', 'compliance', 'records', 'medicalrecords',
  'pharmacy', 'refills', 'feedback', 'webmaster', 'postmaster', 'hr', 'jobs', 'careers', 'press', 'media', 'sales',
  'service', 'customerservice', 'patientservices', 'patient.services', 'portal', 'nurse', 'nurseline', 'unsubscribe',
  'outreach', 'events', 'wellness', 'clinic', 'hostmaster', 'abuse', 'security',
]);

// --- dates
const dateUs = /(?<![\w/.-])(0?[1-9]|1[0-2])([/.-])(0?[1-9]|[12]\d|3[01])\2(\d{4}|\d{2})(?![\w/-]|[.,]\d)/g;
const dateIso = /(?<![\w/.-])((?:18|19|20)\d{2})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![\w/-]|[.,]\d)/g;
const dateMonthFirst = new RegExp(`\\b(?:${months})\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+(\\d{4})\\b`, 'gi');
const dateDayFirst = new RegExp(`\\b\\d{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?(?:${months})\\.?,?\\s+(\\d{4})\\b`, 'gi');
const dobKeyword = /\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s?date|birthday|born)\b/gi;
const partialDate = new RegExp(
  `^[^.!?\\n]{0,24}?\\b((?:(?:${months})\\.?\\s+\\d{4})|(?:(?:${months})\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?(?:,?\\s+\\d{4})?)|(?:\\d{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?(?:${months})(?:,?\\s+\\d{4})?)|(?:\\d{1,4}[/.-]\\d{1,2}(?:[/.-]\\d{2,4})?))(?![\\w/])`,
  'i',
);
const historyContext = /\b(?:since|founded|opened|established|est\.?|effective|updated|revised|published|copyright|as of)\s*(?:on|in)?\s*$|©\s*$/i;
const ageOver89 = /\b(?:aged?\s+(9\d|1[01]\d)\b|(9\d|1[01]\d)[\s-]?(?:years?|yrs?)[\s-]?old\b|(9\d|1[01]\d)\s?(?:y\/o|yo)\b)/gi;

// --- clinical
const icdDotted = /(?<![\w.])[A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}(?![\w]|\.\d)/g;
const icdContext = /\b(?:icd(?:[\s-]?10)?(?:[\s-]?cm)?|dx|diagnosis\s+code|diag\s+code)\s*(?:codes?)?\s*[:#-]?\s*([A-TV-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?)(?![\w.])/gi;
const snomedContext = /\b(?:snomed(?:[\s-]?ct)?|sctid|sct)\s*(?:code|id|concept(?:\s+id)?)?\s*[:#-]?\s*(\d{6,18})(?!\w)/gi;
const analyte = [...labAnalytes].sort((a, b) => b.length - a.length).map(phrase).join('|');
const unit = [...labUnits].sort((a, b) => b.length - a.length).map(phrase).join('|');
const labNumber = '\\d{1,4}(?:[.,]\\d{1,3})?(?:\\s*/\\s*\\d{2,3})?';
// "Cholesterol: 5 tips", "A1C 20% off": a count or a discount after an analyte is copy, not a result.
const countNouns = 'off|tips|ways|things|steps|reasons|foods|questions|minutes|mins|hours|days|weeks|months|years|times|people|adults|americans|patients|facts|myths|signs|secrets|locations|visits';
const labForward = new RegExp(
  `\\b(?:${analyte})\\b(?:\\s+(?:levels?|results?|readings?|values?|count|test|score))?\\s*(?:(?:is|was|were|of|at|reading of|measured at|came back at|came back|:|=|-)\\s*)?(?:about|around|approximately|approx\\.?|~|over|under|above|below)?\\s*(${labNumber})(\\s*(?:${unit}|%))?(?![\\w/:%]|[.,-]\\d)(?!\\s+(?:${countNouns})\\b)`,
  'gi',
);
const labReverse = new RegExp(`(?<![\\w$.,])(${labNumber})\\s*(?:${unit}|%)\\s+(?:${analyte})\\b`, 'gi');
const labUnitOnly = new RegExp(`(?<![\\w$.,])${labNumber}\\s*(?:${unit})(?![\\w/])`, 'gi');

interface TermInfo {
  tokens: string[];
  raw: string[];
  exactCase: boolean;
  kind: 'condition' | 'medication';
}
const termIndex = new Map<string, TermInfo[]>();
function indexTerms(entries: readonly TermEntry[], kind: TermInfo['kind']): void {
  for (const e of entries) {
    const raw = e.term.split(/[\s-]+/);
    const tokens = raw.map((x) => x.toLowerCase());
    const info: TermInfo = { tokens, raw, exactCase: Boolean(e.exactCase), kind };
    const list = termIndex.get(tokens[0]!) ?? [];
    list.push(info);
    list.sort((a, b) => b.tokens.length - a.tokens.length);
    termIndex.set(tokens[0]!, list);
  }
}
indexTerms(conditionTerms, 'condition');
indexTerms(medicationTerms, 'medication');
const nonAsciiWord = /[\p{L}\p{N}]/u;
/** The first three characters of every term's first word, packed as base-128 numbers (see scanTerms). */
const termPrefixes = new Set<number>();
for (const first of termIndex.keys()) {
  let key = 0;
  for (let k = 0; k < 3; k++) key = key * 128 + (k < first.length ? lowerCode(first.charCodeAt(k)) : 0);
  termPrefixes.add(key);
}
// The next word of a multi-word term: one to three spaces or hyphens, then the word.
const nextToken = /[\s-]{1,3}([\p{L}\p{N}]+(?:['’][\p{L}]+)*)/uy;

type Push = (start: number, end: number, kind: PhiKind, severity: Severity, rule: string) => void;

const suffixAbbreviations: Record<string, string> = {
  street: 'st', avenue: 'ave', road: 'rd', boulevard: 'blvd', lane: 'ln', drive: 'dr', court: 'ct', place: 'pl',
  terrace: 'ter', circle: 'cir', parkway: 'pkwy', highway: 'hwy', trail: 'trl', square: 'sq',
};

/** "12 Oak Street, Suite 2" and "12 oak st" compare equal on their street part. */
function addressKey(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .map((w) => suffixAbbreviations[w] ?? w)
    .join(' ');
}

function digitsOf(s: string): string {
  const d = s.replace(/\D/g, '');
  return d.length === 11 && d.startsWith('1') ? d.slice(1) : d;
}

/** Scans `text` and returns its findings, sorted by offset, overlaps resolved in favour of the more specific kind. */
export function scanText(text: string, options: ScanOptions = {}): Finding[] {
  const found: Finding[] = [];
  const push: Push = (start, end, kind, severity, rule) =>
    void found.push({ start, end, kind, category: categoryOf(kind), severity, rule });
  const allowPhones = new Set((options.allow?.phones ?? []).map(digitsOf));
  const allowEmails = new Set((options.allow?.emails ?? []).map((e) => e.trim().toLowerCase()));
  const allowAddresses = (options.allow?.addresses ?? []).map(addressKey).filter((a) => a.length > 0);
  const maxBirthYear = (options.now ?? new Date()).getUTCFullYear() - 3;

  scanIdentifiers(text, push, allowPhones, allowEmails, allowAddresses);
  scanDates(text, push, maxBirthYear);
  scanClinical(text, push);
  scanTerms(text, push);
  return resolveOverlaps(found);
}

function lastGroupStart(m: RegExpExecArray, group: string): number {
  return m.index + m[0].length - group.length;
}

function scanIdentifiers(text: string, push: Push, allowPhones: Set<string>, allowEmails: Set<string>, allowAddresses: string[]): void {
  let m: RegExpExecArray | null;
  for (ssnFormatted.lastIndex = 0; (m = ssnFormatted.exec(text)); ) push(m.index, m.index + m[0].length, 'ssn', 'high', 'ssn-format');
  for (ssnContext.lastIndex = 0; (m = ssnContext.exec(text)); ) {
    const s = lastGroupStart(m, m[1]!);
    push(s, s + m[1]!.length, 'ssn', 'high', 'ssn-context');
  }
  for (mrnContext.lastIndex = 0; (m = mrnContext.exec(text)); ) {
    const s = lastGroupStart(m, m[1]!);
    push(s, s + m[1]!.length, 'mrn', 'high', 'record-number-context');
  }
  for (bareDigits.lastIndex = 0; (m = bareDigits.exec(text)); ) {
    const pre = before(text, m.index, 30);
    if (m[0].length === 10 || (m[0].length === 11 && m[0].startsWith('1'))) {
      if (phoneContext.test(pre)) {
        if (!exemptPhone(text, m.index, m[0], allowPhones)) push(m.index, m.index + m[0].length, 'phone', severityOf(pre), 'phone-digits');
        continue;
      }
    }
    push(m.index, m.index + m[0].length, 'mrn', 'medium', mrnLikeRule);
  }
  for (const re of [phoneNanp, phoneIntl]) {
    for (re.lastIndex = 0; (m = re.exec(text)); ) {
      if (exemptPhone(text, m.index, m[0], allowPhones)) continue;
      push(m.index, m.index + m[0].length, 'phone', severityOf(before(text, m.index, 40)), re === phoneNanp ? 'phone-nanp' : 'phone-international');
    }
  }
  for (email.lastIndex = 0; (m = email.exec(text)); ) {
    const local = m[1]!.toLowerCase();
    if (roleMailboxes.has(local) || allowEmails.has(m[0].toLowerCase())) continue;
    push(m.index, m.index + m[0].length, 'email', severityOf(before(text, m.index, 40)), 'email-address');
  }
  for (street.lastIndex = 0; (m = street.exec(text)); ) {
    const words = m[1]!.trim().split(/\s+/);
    if (words.some((w) => streetStopwords.has(w.toLowerCase()))) continue;
    let end = m.index + m[0].length;
    const tail = text.slice(end, end + 80);
    const unitMatch = unitTail.exec(tail);
    const suiteMatch = unitMatch ? null : suiteTail.exec(tail);
    end += unitMatch?.[0].length ?? suiteMatch?.[0].length ?? 0;
    const zip = cityZipTail.exec(text.slice(end, end + 80));
    if (zip) end += zip[0].length;
    const pre = before(text, m.index, 60);
    const streetPart = addressKey(m[0]);
    if (allowAddresses.some((a) => a === streetPart || a.startsWith(`${streetPart} `))) continue;
    const personal = personalContactContext.test(pre);
    if (!personal && !unitMatch && orgContext.test(pre)) continue;
    push(m.index, end, 'address', personal || unitMatch || zip ? 'high' : 'medium', 'street-address');
  }
  for (poBox.lastIndex = 0; (m = poBox.exec(text)); ) {
    const pre = before(text, m.index, 60);
    if (!personalContactContext.test(pre) && orgContext.test(pre)) continue;
    push(m.index, m.index + m[0].length, 'address', 'medium', 'po-box');
  }
}

function exemptPhone(text: string, start: number, written: string, allow: Set<string>): boolean {
  const digits = digitsOf(written);
  if (digits.length === 10 && tollFree.has(digits.slice(0, 3))) return true;
  if (allow.has(digits)) return true;
  const pre = before(text, start, 40);
  return !personalContactContext.test(pre) && orgContext.test(pre);
}

function severityOf(pre: string): Severity {
  return personalContactContext.test(pre) ? 'high' : 'medium';
}

function scanDates(text: string, push: Push, maxBirthYear: number): void {
  let m: RegExpExecArray | null;
  // Dates right after a DOB keyword, with or without a year.
  for (dobKeyword.lastIndex = 0; (m = dobKeyword.exec(text)); ) {
    const from = m.index + m[0].length;
    const d = partialDate.exec(text.slice(from, from + 60));
    if (!d) continue;
    const s = from + d.index + d[0].length - d[1]!.length;
    push(s, s + d[1]!.length, 'dob', 'high', 'dob-context');
  }
  const plausible = (start: number, end: number, year: number) => {
    if (year < 1900 || year > maxBirthYear) return;
    if (historyContext.test(before(text, start, 24))) return;
    push(start, end, 'dob', 'medium', 'plausible-birth-date');
  };
  for (dateUs.lastIndex = 0; (m = dateUs.exec(text)); ) {
    const y = m[4]!;
    const year = y.length === 4 ? Number(y) : Number(y) > (maxBirthYear + 3) % 100 ? 1900 + Number(y) : 2000 + Number(y);
    plausible(m.index, m.index + m[0].length, year);
  }
  for (dateIso.lastIndex = 0; (m = dateIso.exec(text)); ) plausible(m.index, m.index + m[0].length, Number(m[1]));
  for (const re of [dateMonthFirst, dateDayFirst]) {
    for (re.lastIndex = 0; (m = re.exec(text)); ) plausible(m.index, m.index + m[0].length, Number(m[1]));
  }
  for (ageOver89.lastIndex = 0; (m = ageOver89.exec(text)); ) push(m.index, m.index + m[0].length, 'dob', 'medium', 'age-over-89');
}

function scanClinical(text: string, push: Push): void {
  let m: RegExpExecArray | null;
  for (icdDotted.lastIndex = 0; (m = icdDotted.exec(text)); ) push(m.index, m.index + m[0].length, 'icd10', 'high', 'icd10-code');
  for (icdContext.lastIndex = 0; (m = icdContext.exec(text)); ) {
    const s = lastGroupStart(m, m[1]!);
    push(s, s + m[1]!.length, 'icd10', 'high', 'icd10-context');
  }
  for (snomedContext.lastIndex = 0; (m = snomedContext.exec(text)); ) {
    const s = lastGroupStart(m, m[1]!);
    push(s, s + m[1]!.length, 'snomed', 'high', 'snomed-context');
  }
  for (labForward.lastIndex = 0; (m = labForward.exec(text)); ) {
    // "A1C 2025 guidelines": a bare year is not a measured value.
    if (!m[2] && /^(?:19|20)\d\d$/.test(m[1]!)) continue;
    push(m.index, m.index + m[0].length, 'lab-value', 'high', 'lab-analyte-value');
  }
  for (labReverse.lastIndex = 0; (m = labReverse.exec(text)); ) push(m.index, m.index + m[0].length, 'lab-value', 'high', 'lab-value-analyte');
  for (labUnitOnly.lastIndex = 0; (m = labUnitOnly.exec(text)); ) push(m.index, m.index + m[0].length, 'lab-value', 'medium', 'lab-unit-value');
}

/** Lower case, a possessive "'s" dropped, apostrophes removed: "Alzheimer's" -> "alzheimer". */
function normToken(raw: string): string {
  if (raw.indexOf("'") === -1 && raw.indexOf('’') === -1) return raw.toLowerCase();
  return raw.replace(/['’]s$/i, '').replace(/['’]/g, '').toLowerCase();
}

function rawToken(raw: string): string {
  return raw.indexOf("'") === -1 && raw.indexOf('’') === -1 ? raw : raw.replace(/['’]s$/i, '');
}

// The hot loop of the scanner. Words are found by char code, and a word is lower-cased and looked up only when its
// first three characters start some term (most words fail that check without allocating anything).
function scanTerms(text: string, push: Push): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    let c = text.charCodeAt(i);
    if (!isWordCode(c)) {
      i++;
      continue;
    }
    const start = i;
    let key = lowerCode(c);
    let keyLength = 1;
    let possessive = false;
    for (i++; i < n; i++) {
      c = text.charCodeAt(i);
      if (isWordCode(c)) {
        if (keyLength < 3 && !possessive) {
          key = key * 128 + lowerCode(c);
          keyLength++;
        }
      } else if ((c === 39 || c === 0x2019) && i + 1 < n && isLetterCode(text.charCodeAt(i + 1))) {
        possessive = true;
      } else break;
    }
    for (let k = keyLength; k < 3; k++) key *= 128;
    if (!termPrefixes.has(key)) continue;
    const word = text.slice(start, i);
    const norm = normToken(word);
    const candidates = termIndex.get(norm) ?? (norm.endsWith('s') ? termIndex.get(norm.slice(0, -1)) : undefined);
    if (!candidates) continue;
    for (const cand of candidates) {
      const end = termEnd(text, start, word, cand);
      if (end < 0) continue;
      const severity: Severity = personalContext.test(before(text, start, 60)) ? 'high' : 'medium';
      push(start, end, cand.kind, severity, `${cand.kind}-term`);
      i = end;
      break;
    }
  }
}

function isLetterCode(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c > 127 && nonAsciiWord.test(String.fromCharCode(c)));
}

function isWordCode(c: number): boolean {
  return (c >= 48 && c <= 57) || isLetterCode(c);
}

function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c > 127 ? 127 : c;
}

/** The end offset of term `c` starting with the word `first` at `start`, or -1. */
function termEnd(text: string, start: number, first: string, c: TermInfo): number {
  if (c.exactCase && rawToken(first) !== c.raw[0]) return -1;
  let end = start + first.length;
  for (let k = 1; k < c.tokens.length; k++) {
    nextToken.lastIndex = end;
    const n = nextToken.exec(text);
    if (!n) return -1;
    if (c.exactCase ? rawToken(n[1]!) !== c.raw[k] : normToken(n[1]!) !== c.tokens[k]) return -1;
    end = n.index + n[0].length;
  }
  return end;
}

function resolveOverlaps(found: Finding[]): Finding[] {
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  for (const f of found) {
    const prev = out[out.length - 1];
    if (!prev || f.start >= prev.end) {
      out.push(f);
      continue;
    }
    if (rank(f) > rank(prev)) out[out.length - 1] = f;
  }
  return out;
}

function rank(f: Finding): number {
  // A bare MRN-like number is the weakest identifier: any other reading of the same digits wins.
  return f.rule === mrnLikeRule ? 0 : priority[f.kind] * 2 + (f.severity === 'high' ? 1 : 0);
}
