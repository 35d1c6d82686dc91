// Builds the journeys of an app: the lifecycle service over the send pipeline's templates and outbox, and the engine listening to syncs and consent changes.
import type { App } from '../app.js';
import { TemplateStore } from '../compose/template-store.js';
import { SegmentRepository } from '../segments/segment-repository.js';
import { SegmentService } from '../segments/segment-service.js';
import type { SendingService } from '../sending/sending-service.js';
import { JourneyEngine } from './journey-engine.js';
import { JourneyService } from './journey-service.js';

export interface Journeys {
  service: JourneyService;
  engine: JourneyEngine;
  /** Stops listening. */
  close(): void;
}

export interface OpenJourneysOptions {
  /** The journeys' time (tests advance it); default the wall clock. */
  clock?: () => Date;
  /** Listen to facts writes and consent changes (default true); a CLI that only reads counts passes false. */
  listen?: boolean;
  /** The send pipeline whose outbox and dispatcher the journeys use (default the app's). */
  sending?: () => Promise<SendingService>;
}

/**
 * Opens journeys over the app. When listening, the segment index is opened first, so its own facts listener runs
 * before the engine's and segment entry is decided on the index as written.
 */
export async function openJourneys(app: App, options: OpenJourneysOptions = {}): Promise<Journeys> {
  const clock = options.clock ?? (() => new Date());
  const listen = options.listen ?? true;
  const sending = options.sending ?? (() => app.sending());
  const templates = new TemplateStore(app.db);
  const segmentVersions = new SegmentRepository(app.db);
  const service = new JourneyService({
    db: app.db,
    audit: app.audit,
    templates,
    segmentVersions,
    outbox: async () => (await sending()).outbox,
    onApproved: (journey) => engine.activate(journey),
    clock,
  });
  const segments = new SegmentService({
    index: async () => (await app.segmentIndex()).index,
    repository: segmentVersions,
    audit: (entries) => app.audit.append(entries),
    clock,
  });
  const engine = new JourneyEngine({
    db: app.db,
    cipher: app.cipher,
    audit: app.audit,
    facts: app.facts,
    consent: app.consent,
    journeys: service,
    outbox: async () => (await sending()).outbox,
    segmentMembers: async (definition) => {
      await (await app.segmentIndex()).settled();
      return segments.allMembers(definition);
    },
    onQueued: () => void sending().then((s) => s.dispatcher.poke(), () => undefined),
    clock,
    log: app.log.child({ component: 'journeys' }),
  });
  if (listen) {
    await app.segmentIndex();
    engine.start();
  }
  return { service, engine, close: () => engine.close() };
}
