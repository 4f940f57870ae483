#!/usr/bin/env node
// Committed entry point so npm can link the bin before `npm run build` has produced dist/.
import '../dist/cli.js';
