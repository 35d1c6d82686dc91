// Runs the seeded connector as its own process for the extension's DOM tests (whose happy-dom globals the connector must not run under): prints one JSON line when ready, and ends when the process it serves ends.
import { rmSync } from 'node:fs';
import { startConnectorWorld } from './connector-world.js';
import { connectorSeed } from './outreach-fixtures.js';

const [origin, watchPid, infoFile] = process.argv.slice(2);
if (!origin || !watchPid) throw new Error('usage: connector-main.ts <allowed origin> <pid whose end ends this process> [file to remove at the end]');
const { previousCampaign: _none, ...seed } = connectorSeed;
const world = await startConnectorWorld({ ...seed, extensionOrigin: origin, oneTimePasswords: false, loginAttemptsPerMinute: 10_000 });
process.stdout.write(
  `${JSON.stringify({ pid: process.pid, url: world.url, kind: world.kind, adminUsername: world.adminUsername, templateId: world.templateId, segmentId: world.segmentId, patientIds: world.patientIds })}\n`,
);

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  void world.close().then(() => {
    if (infoFile) {
      rmSync(infoFile, { force: true });
      rmSync(infoFile.replace(/\.json$/, '.log'), { force: true });
    }
    process.exit(0);
  });
};
// The test run that shares this connector has no hook after its last file: watch its process and end with it.
setInterval(() => {
  try {
    process.kill(Number(watchPid), 0);
  } catch {
    stop();
  }
}, 500);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
