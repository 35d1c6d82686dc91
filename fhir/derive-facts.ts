// Folds validated FHIR resources into patient facts, one resource at a time, so it works streaming and incrementally.
import type { Bundle } from 'fhir/r4.js';
import { finishedEncounterStatuses, loinc, mrnTypeCode, normaliseState, system, upcomingAppointmentStatuses } from './codes.js';
import type {
  AppointmentFact,
  CodeRef,
  ConditionFact,
  CoverageFact,
  EncounterFact,
  MedicationFact,
  ObservationFact,
  PatientFacts,
  ProcedureFact,
} from './patient-facts.js';
import { phi } from './phi.js';
import {
  validateResource,
  type AppointmentResource,
  type ClaimResource,
  type CodeableConcept,
  type ConditionResource,
  type CoverageResource,
  type EncounterResource,
  type ExplanationOfBenefitResource,
  type MedicationRequestResource,
  type ObservationResource,
  type OrganizationResource,
  type PatientResource,
  type PractitionerResource,
  type ProcedureResource,
  type ReadResource,
  type Reference,
} from './resources.js';

const maxEncounters = 20;
const maxListed = 200;

export interface DeriveOptions {
  /** The endpoint name the facts belong to. */
  source: string;
  /** "Now" for upcoming appointments and active coverage (default: the wall clock). */
  now?: Date;
  /**
   * Demo data only: patients without an email get `<given>.<family>.<id>@<domain>`, marked `emailSynthetic`.
   * Use a reserved test domain such as `example.test`.
   */
  syntheticEmailDomain?: string;
}

interface DirectoryEntry {
  name?: string;
  npi?: string;
}

/** Empty facts for a patient seen for the first time. */
export function emptyFacts(source: string, patientId: string): PatientFacts {
  return { patientId, source, deceased: false, encounters: [], conditions: [], observations: [], coverage: [], procedures: [], medications: [], appointments: [] };
}

/** Whole years between a birth date and a day (both ISO); undefined when the birth date is unreadable. */
export function ageOn(birthDate: string, on: Date): number | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(birthDate);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2] ?? 1);
  const d = Number(m[3] ?? 1);
  let age = on.getUTCFullYear() - y;
  if (on.getUTCMonth() + 1 < mo || (on.getUTCMonth() + 1 === mo && on.getUTCDate() < d)) age--;
  return age;
}

const time = (iso: string | undefined): number => (iso ? Date.parse(iso) : Number.NaN);

/** Two ISO strings of one shape and one offset order as text; Date.parse (slow on the hot path) only otherwise. */
function sameShape(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  if (a.length <= 10) return true;
  const n = a.length;
  if (a.charCodeAt(10) !== b.charCodeAt(10)) return false;
  if (a.charCodeAt(n - 1) === 90) return b.charCodeAt(n - 1) === 90; // both end in Z
  const sign = a.charCodeAt(n - 6);
  if (sign !== 43 && sign !== 45) return false; // no +hh:mm / -hh:mm offset: let Date.parse decide
  for (let i = n - 6; i < n; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
  return true;
}

/** a is a later instant than b (an absent or unreadable b loses to any readable a). */
const newer = (a: string | undefined, b: string | undefined): boolean => {
  if (a !== undefined && b !== undefined && sameShape(a, b)) return a > b;
  const ta = time(a);
  const tb = time(b);
  return Number.isNaN(tb) ? !Number.isNaN(ta) : ta > tb;
};

const sameTime = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && (a === b || (!sameShape(a, b) && time(a) === time(b)));

/** Started later, or started together and ended later. */
const laterVisit = (a: EncounterFact, b: EncounterFact): boolean => newer(a.date, b.date) || (sameTime(a.date, b.date) && newer(a.end, b.end));

function codesOfAll(ccs: readonly CodeableConcept[] | undefined): CodeRef[] {
  if (!ccs || ccs.length === 0) return [];
  if (ccs.length === 1) return codesOf(ccs[0]);
  const out: CodeRef[] = [];
  for (const cc of ccs) for (const c of codesOf(cc)) out.push(c);
  return out;
}

function codesOf(cc: CodeableConcept | undefined): CodeRef[] {
  const out: CodeRef[] = [];
  for (const c of cc?.coding ?? []) {
    if (c.system && c.code) out.push(c.display ? { system: c.system, code: c.code, display: c.display } : { system: c.system, code: c.code });
  }
  return out;
}

function nameOf(names: PractitionerResource['name']): string | undefined {
  const n = names?.find((x) => x.use === 'official') ?? names?.[0];
  if (!n) return undefined;
  const parts = [...(n.prefix ?? []), ...(n.given ?? []), ...(n.family ? [n.family] : [])];
  return parts.length ? parts.join(' ') : undefined;
}

function replaceById<T extends { id?: string }>(list: T[], item: T): void {
  const i = item.id === undefined ? -1 : list.findIndex((x) => x.id === item.id);
  if (i >= 0) list[i] = item;
  else list.push(item);
}

function dropById<T extends { id?: string }>(list: T[], id: string | undefined): T[] {
  return id === undefined ? list : list.filter((x) => x.id !== id);
}

function keepNewest<T>(list: T[], dateOf: (x: T) => string | undefined, max: number): T[] {
  if (list.length <= max) return list;
  return [...list].sort((a, b) => (time(dateOf(b)) || 0) - (time(dateOf(a)) || 0)).slice(0, max);
}

/**
 * The fold. Practitioners and Organizations go into a directory (so references by id, by `urn:uuid:` and by
 * identifier resolve to names); every other resource of the subset folds into its patient's facts.
 */
export class FactsFolder {
  private readonly practitioners = new Map<string, DirectoryEntry>();
  private readonly organizations = new Map<string, DirectoryEntry>();
  /** fullUrl (`urn:uuid:...`) -> `Type/id`, from bundles. */
  private readonly fullUrls = new Map<string, string>();
  private readonly canonicals = new Map<string, string>();
  private readonly now: Date;

  constructor(readonly options: DeriveOptions) {
    this.now = options.now ?? new Date();
  }

  /** Records a bundle entry's fullUrl so `urn:uuid:` references to it resolve. */
  registerFullUrl(fullUrl: string, resourceType: string, id: string): void {
    this.fullUrls.set(fullUrl, `${resourceType}/${id}`);
  }

  /** Adds a Practitioner or Organization to the directory. */
  addToDirectory(resource: PractitionerResource | OrganizationResource): void {
    const isPractitioner = resource.resourceType === 'Practitioner';
    const map = isPractitioner ? this.practitioners : this.organizations;
    const npi = resource.identifier?.find((i) => i.system === system.npi)?.value;
    const name = isPractitioner ? nameOf((resource as PractitionerResource).name) : (resource as OrganizationResource).name;
    const entry: DirectoryEntry = { ...(name ? { name } : {}), ...(npi ? { npi } : {}) };
    if (resource.id) map.set(`${resource.resourceType}/${resource.id}`, entry);
    for (const ident of resource.identifier ?? []) {
      if (!ident.value) continue;
      if (ident.system) map.set(`${resource.resourceType}?identifier=${ident.system}|${ident.value}`, entry);
      map.set(`${resource.resourceType}?identifier=${ident.value}`, entry);
    }
  }

  /** `Type/id` of a reference: relative, absolute, versioned or `urn:uuid:` (through the bundle's fullUrls). */
  canonical(ref: string | undefined): string | undefined {
    if (!ref) return undefined;
    if (ref.startsWith('urn:uuid:')) return this.fullUrls.get(ref);
    // References repeat (every resource of a patient names it): parse each once.
    const cached = this.canonicals.get(ref);
    if (cached !== undefined) return cached || undefined;
    const result = this.parseReference(ref);
    if (this.canonicals.size >= 100_000) this.canonicals.clear();
    this.canonicals.set(ref, result ?? '');
    return result;
  }

  private parseReference(ref: string): string | undefined {
    if (ref.includes('?')) {
      const q = ref.indexOf('?');
      const type = ref.slice(ref.lastIndexOf('/', q) + 1, q);
      return `${type}${decodeURIComponent(ref.slice(q))}`;
    }
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
    return m ? `${m[1]}/${m[2]}` : undefined;
  }

  /** The patient id a reference points at, when it points at a Patient. */
  patientIdOf(ref: Reference | undefined): string | undefined {
    const raw = ref?.reference;
    if (!raw) return undefined;
    const c = this.canonical(raw);
    if (c?.startsWith('Patient/')) return c.slice(8);
    // A urn:uuid outside any registered bundle: Synthea and most generators use the resource id as the uuid.
    if (!c && raw.startsWith('urn:uuid:')) return raw.slice(9);
    return undefined;
  }

  /** The patient a resource belongs to (undefined for directory resources and resources without a patient). */
  patientOf(resource: ReadResource): string | undefined {
    switch (resource.resourceType) {
      case 'Patient':
        return resource.id;
      case 'Condition':
      case 'Encounter':
      case 'Observation':
      case 'MedicationRequest':
      case 'Procedure':
        return this.patientIdOf(resource.subject);
      case 'Coverage':
        return this.patientIdOf(resource.beneficiary);
      case 'Claim':
      case 'ExplanationOfBenefit':
      case 'Consent':
        return this.patientIdOf(resource.patient);
      case 'Appointment':
        for (const p of resource.participant) {
          const id = this.patientIdOf(p.actor);
          if (id && !this.isPractitioner(p.actor?.reference)) return id;
        }
        return undefined;
      default:
        return undefined;
    }
  }

  private isPractitioner(ref: string | undefined): boolean {
    const c = this.canonical(ref);
    return Boolean(c && (c.startsWith('Practitioner') || this.practitioners.has(c)));
  }

  private practitioner(ref: Reference | undefined): DirectoryEntry | undefined {
    const c = this.canonical(ref?.reference) ?? (ref?.identifier?.value ? `Practitioner?identifier=${ref.identifier.system ? `${ref.identifier.system}|` : ''}${ref.identifier.value}` : undefined);
    return c ? this.practitioners.get(c) : undefined;
  }

  private practitionerName(ref: Reference | undefined): string | undefined {
    return this.practitioner(ref)?.name ?? ref?.display;
  }

  /** Folds one validated resource into its patient's facts (mutated and returned). */
  fold(facts: PatientFacts, resource: ReadResource): PatientFacts {
    const updated = resource.meta?.lastUpdated;
    if (updated && newer(updated, facts.updatedAt)) facts.updatedAt = updated;
    switch (resource.resourceType) {
      case 'Patient':
        this.foldPatient(facts, resource);
        break;
      case 'Condition':
        this.foldCondition(facts, resource);
        break;
      case 'Encounter':
        this.foldEncounter(facts, resource);
        break;
      case 'Observation':
        this.foldObservation(facts, resource);
        break;
      case 'Coverage':
        this.foldCoverage(facts, resource);
        break;
      case 'Claim':
      case 'ExplanationOfBenefit':
        this.foldClaim(facts, resource);
        break;
      case 'Procedure':
        this.foldProcedure(facts, resource);
        break;
      case 'MedicationRequest':
        this.foldMedication(facts, resource);
        break;
      case 'Appointment':
        this.foldAppointment(facts, resource);
        break;
      case 'Practitioner':
      case 'Organization':
        this.addToDirectory(resource);
        break;
      default:
        break;
    }
    return facts;
  }

  /**
   * Completes facts after a batch was folded: the PCP (generalPractitioner, else the most frequent encounter
   * practitioner) with its name, and upcoming appointments only.
   */
  finish(facts: PatientFacts): PatientFacts {
    if (facts.pcp?.source !== 'generalPractitioner') {
      const counts = new Map<string, number>();
      for (const ref of Object.values(facts.encounterPractitioners ?? {})) counts.set(ref, (counts.get(ref) ?? 0) + 1);
      // Ties go to the practitioner seen most recently (encounters are kept newest first), then by reference.
      const recency = new Map<string, number>();
      facts.encounters.forEach((e, i) => {
        const ref = e.id ? facts.encounterPractitioners?.[e.id] : undefined;
        if (ref && !recency.has(ref)) recency.set(ref, i);
      });
      const rank = (ref: string) => recency.get(ref) ?? Number.MAX_SAFE_INTEGER;
      let best: string | undefined;
      let bestCount = 0;
      for (const [ref, n] of counts) {
        if (n > bestCount || (n === bestCount && best !== undefined && (rank(ref) < rank(best) || (rank(ref) === rank(best) && ref < best)))) {
          best = ref;
          bestCount = n;
        }
      }
      if (best) facts.pcp = { reference: best, source: 'encounters', ...this.pcpDetails(best, facts.pcp?.reference === best ? facts.pcp : undefined) };
    } else {
      facts.pcp = { ...facts.pcp, ...this.pcpDetails(facts.pcp.reference, facts.pcp) };
    }
    const now = this.now.getTime();
    facts.appointments = facts.appointments
      .filter((a) => upcomingAppointmentStatuses.has(a.status) && (a.start === undefined || time(a.start) >= now))
      .sort((a, b) => (time(a.start) || 0) - (time(b.start) || 0));
    return facts;
  }

  private pcpDetails(reference: string, previous: { name?: string; npi?: string } | undefined): { name?: string; npi?: string } {
    const entry = this.practitioner({ reference }) ?? this.practitioners.get(this.canonical(reference) ?? '');
    const name = entry?.name ?? previous?.name;
    const npi = entry?.npi ?? previous?.npi;
    return { ...(name ? { name } : {}), ...(npi ? { npi } : {}) };
  }

  private foldPatient(f: PatientFacts, p: PatientResource): void {
    // A Patient resource is a whole snapshot: what a newer version leaves out is gone (a moved patient has no old city).
    f.mrn = f.given = f.family = f.birthDate = f.city = f.postalCode = f.phone = undefined;
    f.gender = f.state = f.country = f.language = undefined;
    if (!f.emailSynthetic) f.email = undefined;
    const mrn = p.identifier?.find((i) => i.type?.coding?.some((c) => c.code === mrnTypeCode && (!c.system || c.system === system.v2IdentifierType)))?.value;
    if (mrn) f.mrn = phi(mrn);
    const name = p.name?.find((n) => n.use === 'official') ?? p.name?.find((n) => n.use !== 'old' && n.use !== 'maiden') ?? p.name?.[0];
    if (name?.given?.length) f.given = phi(name.given.join(' '));
    if (name?.family) f.family = phi(name.family);
    if (p.gender) f.gender = p.gender;
    if (p.birthDate) f.birthDate = phi(p.birthDate);
    f.deceased = p.deceasedBoolean === true || p.deceasedDateTime !== undefined;
    // Assigned, never deleted: `delete` turns the facts object into a slow dictionary for every later fold.
    f.deceasedDate = p.deceasedDateTime;
    const nowMs = this.now.getTime();
    const current = <T extends { period?: { end?: string } }>(x: T) => !x.period?.end || time(x.period.end) >= nowMs;
    const address = p.address?.filter(current).find((a) => a.use === 'home') ?? p.address?.filter(current)[0];
    if (address) {
      if (address.city) f.city = phi(address.city);
      if (address.state) f.state = normaliseState(address.state);
      if (address.postalCode) f.postalCode = phi(address.postalCode);
      if (address.country) f.country = address.country;
    }
    const useRank: Record<string, number> = { mobile: 0, home: 1, work: 2 };
    const telecom = (p.telecom ?? [])
      .filter((t) => t.value && current(t))
      .sort((a, b) => (a.rank ?? 99) - (b.rank ?? 99) || (useRank[a.use ?? ''] ?? 3) - (useRank[b.use ?? ''] ?? 3));
    const email = telecom.find((t) => t.system === 'email')?.value;
    const phone = telecom.find((t) => t.system === 'phone' || t.system === 'sms')?.value;
    if (email) {
      f.email = phi(email);
      f.emailSynthetic = undefined;
    } else if (this.options.syntheticEmailDomain && p.id) {
      const local = [name?.given?.[0], name?.family, p.id.slice(0, 8)].filter(Boolean).join('.').toLowerCase().replace(/[^a-z0-9.-]/g, '');
      f.email = phi(`${local}@${this.options.syntheticEmailDomain}`);
      f.emailSynthetic = true;
    }
    if (phone) f.phone = phi(phone);
    const comm = p.communication?.find((c) => c.preferred) ?? p.communication?.[0];
    const lang = comm?.language.coding?.find((c) => c.system === system.bcp47)?.code ?? comm?.language.coding?.[0]?.code;
    if (lang) f.language = lang;
    const gp = p.generalPractitioner?.find((r) => {
      const c = this.canonical(r.reference);
      return c ? c.startsWith('Practitioner') : Boolean(r.identifier?.value);
    });
    if (gp) {
      const reference = this.canonical(gp.reference) ?? gp.reference ?? `Practitioner?identifier=${gp.identifier?.system ? `${gp.identifier.system}|` : ''}${gp.identifier?.value}`;
      const entry = this.practitioner(gp);
      const pcpName = entry?.name ?? gp.display;
      f.pcp = { reference, source: 'generalPractitioner', ...(pcpName ? { name: pcpName } : {}), ...(entry?.npi ? { npi: entry.npi } : {}) };
    } else if (f.pcp?.source === 'generalPractitioner') {
      f.pcp = undefined;
    }
  }

  private foldCondition(f: PatientFacts, c: ConditionResource): void {
    const status = c.clinicalStatus?.coding?.find((x) => x.system === system.conditionClinical)?.code ?? c.clinicalStatus?.coding?.[0]?.code;
    const onset = c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate;
    const fact: ConditionFact = { codes: codesOf(c.code) };
    if (c.id) fact.id = c.id;
    if (status) fact.clinicalStatus = status;
    if (onset) fact.onset = onset;
    if (c.abatementDateTime) fact.abatement = c.abatementDateTime;
    replaceById(f.conditions, fact);
    f.conditions = keepNewest(f.conditions, (x) => x.onset, maxListed * 2);
  }

  private foldEncounter(f: PatientFacts, e: EncounterResource): void {
    const date = e.period?.start ?? e.period?.end;
    if (e.status === 'entered-in-error' || e.status === 'cancelled') {
      f.encounters = dropById(f.encounters, e.id);
      if (e.id && f.encounterPractitioners) delete f.encounterPractitioners[e.id];
      if (f.lastVisit?.id === e.id) f.lastVisit = undefined;
      return;
    }
    if (!date) return;
    const performer =
      e.participant?.find((p) => p.individual && p.type?.some((t) => t.coding?.some((c) => c.code === 'PPRF' || c.code === 'ATND')))?.individual ??
      e.participant?.find((p) => p.individual?.reference || p.individual?.identifier)?.individual;
    const performerRef = performer?.reference ?? (performer?.identifier?.value ? `Practitioner?identifier=${performer.identifier.system ? `${performer.identifier.system}|` : ''}${performer.identifier.value}` : undefined);
    const practitioner = this.practitionerName(performer);
    // Built by assignment, not spreads: this runs once per encounter and spreads of varying shapes are slow in V8.
    const fact: EncounterFact = { date, status: e.status, types: codesOfAll(e.type), reasons: codesOfAll(e.reasonCode) };
    if (e.id) fact.id = e.id;
    if (e.period?.end && e.period.start) fact.end = e.period.end;
    if (e.class?.code) fact.class = e.class.code;
    if (practitioner) fact.practitioner = practitioner;
    // Newest first, at most maxEncounters: an insertion into the sorted list, no re-sort per encounter.
    const list = fact.id === undefined ? f.encounters : f.encounters.filter((x) => x.id !== fact.id);
    let at = 0;
    while (at < list.length && !laterVisit(fact, list[at]!)) at++;
    if (at < maxEncounters) {
      list.splice(at, 0, fact);
      if (list.length > maxEncounters) list.length = maxEncounters;
    }
    f.encounters = list;
    if (e.id && performerRef && !this.isNotPractitioner(performerRef)) {
      (f.encounterPractitioners ??= {})[e.id] = this.canonical(performerRef) ?? performerRef;
    }
    if (finishedEncounterStatuses.has(e.status)) {
      if (!f.lastVisit || f.lastVisit.id === fact.id || laterVisit(fact, f.lastVisit)) f.lastVisit = fact;
    } else if (f.lastVisit?.id !== undefined && f.lastVisit.id === fact.id) {
      f.lastVisit = undefined;
    }
  }

  private isNotPractitioner(ref: string): boolean {
    const c = this.canonical(ref);
    return Boolean(c && !c.startsWith('Practitioner'));
  }

  private foldObservation(f: PatientFacts, o: ObservationResource): void {
    if (o.status === 'entered-in-error' || o.status === 'cancelled') {
      f.observations = dropById(f.observations, o.id);
      if (f.a1c?.id !== undefined && f.a1c.id === o.id) f.a1c = undefined;
      return;
    }
    const value = o.valueQuantity?.value;
    const code = o.code.coding?.find((c) => c.system === system.loinc)?.code;
    const date = o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued;
    if (value === undefined || !code || !date) return;
    const list = f.observations;
    let i = 0;
    while (i < list.length && list[i]!.loinc !== code) i++;
    const current = list[i];
    // Latest per code: an older reading of a code is dropped unless it corrects the entry it came from.
    if (current && !(o.id !== undefined && current.id === o.id) && newer(current.date, date)) return;
    const unit = o.valueQuantity?.unit ?? o.valueQuantity?.code;
    const fact: ObservationFact = { loinc: code, value, date };
    if (o.id) fact.id = o.id;
    if (unit) fact.unit = unit;
    list[i] = fact;
    if (code === loinc.hba1c) f.a1c = fact;
  }

  private foldCoverage(f: PatientFacts, c: CoverageResource): void {
    f.coverage = f.coverage.filter((x) => x.source === 'Coverage');
    if (c.status === 'entered-in-error') {
      f.coverage = dropById(f.coverage, c.id);
      return;
    }
    const payorRef = c.payor?.[0];
    const payorKey = this.canonical(payorRef?.reference);
    const payer = (payorKey ? this.organizations.get(payorKey)?.name : undefined) ?? payorRef?.display;
    const type = codesOf(c.type)[0];
    const end = c.period?.end;
    const active = c.status === 'active' && (!end || time(end) >= this.now.getTime());
    const fact: CoverageFact = {
      ...(c.id ? { id: c.id } : {}),
      ...(payer ? { payer } : {}),
      ...(type ? { type } : {}),
      active,
      ...(c.period?.start ? { start: c.period.start } : {}),
      ...(end ? { end } : {}),
      source: 'Coverage',
    };
    replaceById(f.coverage, fact);
  }

  /** Claims stand in for coverage only while the patient has no Coverage resource: one entry per payer. */
  private foldClaim(f: PatientFacts, c: ClaimResource | ExplanationOfBenefitResource): void {
    if (f.coverage.some((x) => x.source === 'Coverage')) return;
    if (c.status === 'entered-in-error' || c.status === 'cancelled') return;
    const ins = c.insurance?.find((i) => i.focal) ?? c.insurance?.[0];
    let payer = ins?.coverage.display;
    let type: CodeRef | undefined;
    if (ins?.coverage.reference?.startsWith('#')) {
      const contained = c.contained?.find((r) => r.resourceType === 'Coverage' && `#${r.id}` === ins.coverage.reference) as
        | { type?: CodeableConcept; payor?: Reference[] }
        | undefined;
      payer ??= contained?.payor?.[0]?.display;
      type = codesOf(contained?.type)[0];
    }
    payer ??= c.insurer?.display ?? (c.insurer?.reference ? this.organizations.get(this.canonical(c.insurer.reference) ?? '')?.name : undefined);
    // Synthea marks uninsured encounters with the payer NO_INSURANCE: that is the absence of coverage.
    if (!payer || /^no[_ ]?insurance$/i.test(payer)) return;
    const start = c.billablePeriod?.start ?? c.created;
    const end = c.billablePeriod?.end ?? c.created;
    const id = `payer:${payer}`;
    const existing = f.coverage.find((x) => x.id === id);
    const fact: CoverageFact = existing ?? { id, payer, active: false, source: c.resourceType };
    if (start && (!fact.start || newer(fact.start, start))) fact.start = start;
    if (end && (!fact.end || newer(end, fact.end))) fact.end = end;
    if (type && !fact.type) fact.type = type;
    if (!existing) f.coverage.push(fact);
    // The payer of the newest claim is the current one, as long as its period has not ended.
    let latest: CoverageFact | undefined;
    for (const x of f.coverage) if (!latest || newer(x.end, latest.end)) latest = x;
    for (const x of f.coverage) x.active = x === latest && x.end !== undefined && time(x.end) >= this.now.getTime();
  }

  private foldProcedure(f: PatientFacts, p: ProcedureResource): void {
    if (p.status === 'entered-in-error' || p.status === 'not-done') {
      f.procedures = dropById(f.procedures, p.id);
      return;
    }
    const date = p.performedDateTime ?? p.performedPeriod?.start;
    const fact: ProcedureFact = { codes: codesOf(p.code) };
    if (p.id) fact.id = p.id;
    if (date) fact.date = date;
    replaceById(f.procedures, fact);
    f.procedures = keepNewest(f.procedures, (x) => x.date, maxListed);
  }

  private foldMedication(f: PatientFacts, m: MedicationRequestResource): void {
    if (m.status === 'entered-in-error') {
      f.medications = dropById(f.medications, m.id);
      return;
    }
    const codes = codesOf(m.medicationCodeableConcept);
    const dr = m.dispenseRequest;
    const supplyDays = durationDays(dr?.expectedSupplyDuration);
    const fact: MedicationFact = { codes, status: m.status };
    if (m.id) fact.id = m.id;
    if (m.authoredOn) fact.authoredOn = m.authoredOn;
    if (dr?.quantity?.value !== undefined) fact.quantity = dr.quantity.value;
    if (supplyDays !== undefined) fact.supplyDays = supplyDays;
    if (dr?.numberOfRepeatsAllowed !== undefined) fact.refills = dr.numberOfRepeatsAllowed;
    replaceById(f.medications, fact);
    f.medications = keepNewest(f.medications, (x) => x.authoredOn, maxListed);
  }

  private foldAppointment(f: PatientFacts, a: AppointmentResource): void {
    if (!a.id) return;
    if (!upcomingAppointmentStatuses.has(a.status)) {
      f.appointments = f.appointments.filter((x) => x.id !== a.id);
      return;
    }
    const practitionerActor = a.participant.find((p) => this.isPractitioner(p.actor?.reference) || p.actor?.identifier)?.actor;
    const practitioner = this.practitionerName(practitionerActor);
    const fact: AppointmentFact = {
      id: a.id,
      status: a.status,
      ...(a.start ? { start: a.start } : {}),
      ...(a.end ? { end: a.end } : {}),
      ...(practitioner ? { practitioner } : {}),
      types: [...codesOfAll(a.serviceType), ...codesOf(a.appointmentType)],
    };
    replaceById(f.appointments, fact);
  }
}

/** Days in a Duration (UCUM d, wk, mo, a, h). */
function durationDays(q: { value?: number; unit?: string; code?: string } | undefined): number | undefined {
  if (q?.value === undefined) return undefined;
  const unit = (q.code ?? q.unit ?? 'd').toLowerCase();
  const perDay: Record<string, number> = { d: 1, day: 1, days: 1, wk: 7, week: 7, weeks: 7, mo: 30, month: 30, months: 30, a: 365, year: 365, years: 365, h: 1 / 24, hour: 1 / 24, hours: 1 / 24 };
  const factor = perDay[unit];
  return factor === undefined ? undefined : Math.round(q.value * factor * 100) / 100;
}

export interface BundleFolding {
  facts: Map<string, PatientFacts>;
  /** Entries that failed validation, value-free. */
  invalid: Array<{ resourceType?: string; resourceId?: string; path: string; reason: string }>;
}

/**
 * Facts from whole bundles held in memory (Synthea transaction bundles, practitioner and hospital bundles):
 * every bundle's fullUrls and directory resources are read first, then the rest is folded.
 */
export function factsFromBundles(bundles: readonly Bundle[], options: DeriveOptions): BundleFolding {
  const folder = new FactsFolder(options);
  const valid: ReadResource[] = [];
  const invalid: BundleFolding['invalid'] = [];
  for (const bundle of bundles) {
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource;
      if (!r) continue;
      if (entry.fullUrl && r.id) folder.registerFullUrl(entry.fullUrl, r.resourceType, r.id);
      const v = validateResource(r);
      if (v.ok === true) {
        if (v.resource.resourceType === 'Practitioner' || v.resource.resourceType === 'Organization') folder.addToDirectory(v.resource);
        else valid.push(v.resource);
      } else if (v.ok === false) {
        invalid.push(v.issue);
      }
    }
  }
  const facts = new Map<string, PatientFacts>();
  for (const r of valid) {
    const id = folder.patientOf(r);
    if (!id || r.resourceType === 'Consent') continue;
    let f = facts.get(id);
    if (!f) facts.set(id, (f = emptyFacts(options.source, id)));
    folder.fold(f, r);
  }
  for (const f of facts.values()) folder.finish(f);
  return { facts, invalid };
}
