#!/usr/bin/env node
// The installed `outreach` binary: loads the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
const { buildProgram } = await import('../cli.ts');
await buildProgram().parseAsync(process.argv);
