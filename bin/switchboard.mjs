#!/usr/bin/env node
// The `switchboard` command. It runs in this very process (no launcher child): tsx's loader is
// registered here, then the TypeScript CLI is imported, so signals reach Switchboard directly.
import { createRequire } from 'node:module';

// First, before tsx or anything that needs a newer Node: a too-old Node says so in one line.
createRequire(import.meta.url)('./node-version.cjs').checkNodeVersion();
await import('tsx');

// src/cli.ts loads as CommonJS (the package has no "type"), so its exports arrive on `default`.
const cli = await import('../src/cli.ts');
(cli.main ?? cli.default.main)(process.argv.slice(2));
