// Runs the seeded e2e connector as its own process for DOM tests (whose happy-dom globals the connector must not run under): prints one JSON line with what the tests need, closes when stdin ends.
import { startConnectorWorld } from './connector-world.js';
import { connectorSeed } from './outreach-fixtures.js';

const [origin, previous] = process.argv.slice(2);
if (!origin) throw new Error('usage: connector-main.ts <allowed origin> [--previous-campaign]');
const { previousCampaign, ...seed } = connectorSeed;
const world = await startConnectorWorld({ ...seed, ...(previous === '--previous-campaign' ? { previousCampaign } : {}), extensionOrigin: origin, loginAttemptsPerMinute: 10_000 });
process.stdout.write(
  `${JSON.stringify({ url: world.url, kind: world.kind, adminUsername: world.adminUsername, templateId: world.templateId, segmentId: world.segmentId, patientIds: world.patientIds })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => {
  void world.close().then(() => process.exit(0));
});
