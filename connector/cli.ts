// The `outreach` command line: one program, each capability registers its own commands.
import { Command } from 'commander';
import { createCliContext, type CliContext } from './cli-context.js';
import { registerIngestCommands } from './ingest/cli.js';
import { registerKeyCommands } from './keys/cli.js';
import { registerConsentCommands } from './consent/cli.js';
import { registerAuditCommands } from './audit/cli.js';
import { registerUserCommands } from './users/cli.js';
import { registerTemplateCommands } from './compose/cli.js';
import { registerServeCommands } from './api/cli.js';
import { registerSegmentCommands } from './segments/cli.js';
import { registerCampaignCommands } from './campaigns/cli.js';
import { registerSalesforceCommands } from './salesforce/cli.js';
import { registerSmartCommands } from './smart/cli.js';
import { registerJourneyCommands } from './journeys/cli.js';

/** Every capability's command registration, in the order `--help` lists them. */
const registrations: Array<(program: Command, ctx: CliContext) => void> = [
  registerKeyCommands,
  registerIngestCommands,
  registerConsentCommands,
  registerAuditCommands,
  registerUserCommands,
  registerTemplateCommands,
  registerServeCommands,
  registerSegmentCommands,
  registerCampaignCommands,
  registerJourneyCommands,
  registerSalesforceCommands,
  registerSmartCommands,
];

export function buildProgram(): Command {
  const program = new Command('outreach')
    .description('Secure Outreach: HIPAA-grade patient outreach between the EHR and the CRM')
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError();
  const ctx = createCliContext(program);
  for (const register of registrations) register(program, ctx);
  return program;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildProgram().parseAsync(process.argv);
}
