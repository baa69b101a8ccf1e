#!/usr/bin/env node
/**
 * Copies the web UI's static files (page, stylesheet, icon) next to its
 * compiled scripts in dist/ui. Run by the package's build script after
 * `tsc -p ui`; plain Node, nothing to install.
 */
import { copyFileSync, mkdirSync } from 'node:fs';

const from = new URL('./', import.meta.url);
const to = new URL('../dist/ui/', import.meta.url);
mkdirSync(to, { recursive: true });
for (const file of ['index.html', 'style.css', 'favicon.svg']) copyFileSync(new URL(file, from), new URL(file, to));
