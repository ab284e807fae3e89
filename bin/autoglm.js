#!/usr/bin/env node
// The CLI runs from its TypeScript sources through Node's type stripping (Node >= 22.18).
// The operator and the server share no code but crds/, so each has its own entry point.
import process from 'node:process';

if (process.argv[2] === 'operator') {
  const { main } = await import('../operator/src/main.ts');
  await main(process.argv.slice(3));
} else {
  await import('../server/src/cli/main.ts');
}
