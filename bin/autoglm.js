#!/usr/bin/env node
// The CLI runs from its TypeScript sources through Node's type stripping (Node >= 22.18).
import '../server/src/cli/main.ts';
