#!/usr/bin/env node
/**
 * Copies the web UI's static files (page, stylesheet, icon) next to its
 * compiled scripts in dist/ui, and uPlot's ES module and stylesheet from
 * the `uplot` package (a dependency of this package) into dist/ui/js/vendor
 * and dist/ui/vendor, where the charts import them by relative path. Run by
 * the package's build script after `tsc -p ui`; plain Node, nothing to
 * install.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const from = new URL('./', import.meta.url);
const to = new URL('../dist/ui/', import.meta.url);
mkdirSync(to, { recursive: true });
for (const file of ['index.html', 'style.css', 'favicon.svg']) copyFileSync(new URL(file, from), new URL(file, to));

// The package's own directory (its `exports` may not list dist files).
const uplot = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
const out = fileURLToPath(to);
mkdirSync(join(out, 'js', 'vendor'), { recursive: true });
mkdirSync(join(out, 'vendor'), { recursive: true });
copyFileSync(join(uplot, 'dist', 'uPlot.esm.js'), join(out, 'js', 'vendor', 'uPlot.esm.js'));
copyFileSync(join(uplot, 'dist', 'uPlot.min.css'), join(out, 'vendor', 'uPlot.min.css'));
copyFileSync(join(uplot, 'LICENSE'), join(out, 'vendor', 'uPlot.LICENSE'));
