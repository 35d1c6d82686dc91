// What a journey is made of: its trigger and its steps (zod schemas, the single source of the types), checked so a journey always ends and never loops.
import { z } from 'zod';
import { fail } from '../errors.js';

const Code = z.string().trim().min(1).max(100);
const StepName = z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'a step name is 1-40 lowercase letters, digits or dashes');
const Hours = z.number().min(0).max(24 * 366);

/** SNOMED CT and ICD-10 codes of diabetes mellitus (type 1 and 2): the default population of the HbA1c screening. */
export const diabetesCodes = ['44054006', '46635009', '73211009', 'E10', 'E11', 'E13'] as const;
/** LOINC 4548-4: hemoglobin A1c. */
export const hba1cLoinc = '4548-4';
/** Mammography: SNOMED 71651007 (procedure), 24623002 (screening mammography), LOINC 24606-6 / 24604-1 (reports). */
export const mammographyCodes = ['71651007', '24623002', '24606-6', '24604-1'] as const;

/** What starts a journey for a patient. Every field is configuration; none is patient data. */
export const JourneyTrigger = z.discriminatedUnion('kind', [
  /** A booked appointment: the first step runs `hoursBefore` its start; a cancelled or moved appointment withdraws it. */
  z.strictObject({ kind: z.literal('appointment-booked'), hoursBefore: Hours.default(24) }),
  /** An active MedicationRequest: each fill lasts its expected supply; the first step runs `daysBefore` the supply runs out. */
  z.strictObject({ kind: z.literal('refill-due'), daysBefore: z.number().min(0).max(90).default(3) }),
  /** Patients with one of `conditionCodes` whose last HbA1c is older than `months` (or missing). */
  z.strictObject({
    kind: z.literal('screening-hba1c'),
    months: z.number().int().min(1).max(60).default(6),
    conditionCodes: z.array(Code).min(1).max(100).default([...diabetesCodes]),
  }),
  /** Mammography by age and gender: eligible patients whose last mammogram is older than `intervalMonths` (or missing). */
  z.strictObject({
    kind: z.literal('screening-mammography'),
    gender: z.enum(['female', 'male', 'other', 'unknown']).default('female'),
    minAge: z.number().int().min(0).max(120).default(50),
    maxAge: z.number().int().min(0).max(120).default(74),
    intervalMonths: z.number().int().min(1).max(120).default(24),
    codes: z.array(Code).min(1).max(100).default([...mammographyCodes]),
  }),
  /** A follow-up `daysAfter` a finished encounter whose type carries one of `encounterTypes`. */
  z.strictObject({
    kind: z.literal('encounter-follow-up'),
    encounterTypes: z.array(Code).min(1).max(100),
    daysAfter: z.number().min(0).max(365).default(7),
  }),
  /** A patient who newly matches a saved segment (its latest version when the journey is approved). */
  z.strictObject({ kind: z.literal('segment-entry'), segmentId: z.number().int().positive() }),
]);
export type JourneyTrigger = z.output<typeof JourneyTrigger>;
export type JourneyTriggerInput = z.input<typeof JourneyTrigger>;
export type TriggerKind = JourneyTrigger['kind'];

export const SendStep = z.strictObject({ kind: z.literal('send'), name: StepName, templateVersionId: z.number().int().positive() });
export const WaitStep = z.strictObject({ kind: z.literal('wait'), name: StepName, hours: Hours.refine((h) => h > 0, 'a wait lasts more than 0 hours') });
export const BranchStep = z.strictObject({
  kind: z.literal('branch'),
  name: StepName,
  /** opened / clicked: the last message of this journey to the patient; booked: an upcoming appointment now. */
  on: z.enum(['opened', 'clicked', 'booked']),
  /** Step names to go to; `exit` ends the journey. */
  then: z.union([StepName, z.literal('exit')]),
  else: z.union([StepName, z.literal('exit')]),
});
export const ExitStep = z.strictObject({ kind: z.literal('exit'), name: StepName });

/** One step. A branch jumps forward only, so every journey ends. */
export const JourneyStep = z.discriminatedUnion('kind', [SendStep, WaitStep, BranchStep, ExitStep]);
export type JourneyStep = z.output<typeof JourneyStep>;

export const JourneySteps = z.array(JourneyStep).min(1).max(50);

/** Parses trigger and steps; BAD_REQUEST naming the field when they do not make a journey. */
export function parseJourneyDefinition(trigger: unknown, steps: unknown): { trigger: JourneyTrigger; steps: JourneyStep[] } {
  const t = JourneyTrigger.safeParse(trigger);
  if (!t.success) throw fail('BAD_REQUEST', `trigger: ${t.error.issues[0]!.message}`, { field: ['trigger', ...t.error.issues[0]!.path].join('.') });
  const s = JourneySteps.safeParse(steps);
  if (!s.success) throw fail('BAD_REQUEST', `steps: ${s.error.issues[0]!.message}`, { field: ['steps', ...s.error.issues[0]!.path].join('.') });
  const names = new Map<string, number>();
  s.data.forEach((step, i) => {
    if (step.name === 'exit' && step.kind !== 'exit') throw fail('BAD_REQUEST', 'the step name exit is reserved', { field: `steps.${i}.name` });
    if (names.has(step.name)) throw fail('BAD_REQUEST', `two steps are named ${step.name}`, { field: `steps.${i}.name` });
    names.set(step.name, i);
  });
  s.data.forEach((step, i) => {
    if (step.kind !== 'branch') return;
    for (const target of [step.then, step.else]) {
      if (target === 'exit') continue;
      const to = names.get(target);
      if (to === undefined) throw fail('BAD_REQUEST', `the branch goes to an unknown step ${target}`, { field: `steps.${i}` });
      if (to <= i) throw fail('BAD_REQUEST', 'a branch may only jump forward', { field: `steps.${i}` });
    }
  });
  if (!s.data.some((step) => step.kind === 'send')) throw fail('BAD_REQUEST', 'a journey sends at least one message', { field: 'steps' });
  return { trigger: t.data, steps: s.data };
}

/** Where a branch or the next step leads: an index, or -1 for the end. */
export function stepIndexOf(steps: readonly JourneyStep[], name: string): number {
  return name === 'exit' ? -1 : steps.findIndex((s) => s.name === name);
}

/** JSON with object keys sorted: equal definitions always serialise (and hash) alike. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
