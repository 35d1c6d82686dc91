// An in-memory FactsSink for FHIR-layer tests: keeps what a sync wrote, round-tripped through JSON as a store would.
import type { Consent } from 'fhir/r4.js';
import type { FactsSink, QuarantineItem, SyncState } from '../../../fhir/facts-sink.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';

export class MemorySink implements FactsSink {
  readonly facts = new Map<string, PatientFacts>();
  readonly consents: Consent[] = [];
  readonly quarantined: QuarantineItem[] = [];
  readonly states = new Map<string, SyncState>();
  writes = 0;
  /** Patient ids of every writeFacts call, in order. */
  readonly written: string[][] = [];

  async loadFacts(source: string, patientIds: readonly string[]): Promise<Map<string, PatientFacts>> {
    const out = new Map<string, PatientFacts>();
    for (const id of patientIds) {
      const f = this.facts.get(`${source}/${id}`);
      if (f) out.set(id, JSON.parse(JSON.stringify(f)) as PatientFacts);
    }
    return out;
  }

  async writeFacts(batch: readonly PatientFacts[]): Promise<void> {
    this.writes++;
    this.written.push(batch.map((f) => f.patientId));
    for (const f of batch) this.facts.set(`${f.source}/${f.patientId}`, JSON.parse(JSON.stringify(f)) as PatientFacts);
  }

  async writeConsents(_source: string, consents: readonly Consent[]): Promise<void> {
    this.consents.push(...consents);
  }

  async quarantine(items: readonly QuarantineItem[]): Promise<void> {
    this.quarantined.push(...items);
  }

  async getSyncState(endpoint: string): Promise<SyncState | undefined> {
    return this.states.get(endpoint);
  }

  async setSyncState(state: SyncState): Promise<void> {
    this.states.set(state.endpoint, state);
  }
}
