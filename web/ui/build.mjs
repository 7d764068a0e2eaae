// Builds the anycatch web UI into ../dist: one minified JS module, one CSS
// file (both with content-hashed names), index.html pointing at them and a
// third-party licence notice. The output depends only on the sources and
// the exact package versions in package-lock.json, so CI can rebuild and
// diff it against the committed bundle.
import * as esbuild from 'esbuild';
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  outdir: dist,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});

const outs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outs.find((f) => f.endsWith('.js'));
const css = outs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`build: missing output (${outs.join(', ')})`);

const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', `/${css}`)
  .replace('%JS%', `/${js}`);
writeFileSync(join(dist, 'index.html'), html);

const notices = ['d3-geo', 'd3-array', 'd3-quadtree', 'internmap', 'topojson-client', 'world-atlas']
  .map((p) => `== ${p} ==\n${readFileSync(join(here, 'node_modules', p, 'LICENSE'), 'utf8').trim()}\n`)
  .join('\n');
writeFileSync(join(dist, 'THIRD_PARTY_LICENSES.txt'),
  'The anycatch web bundle includes code and data from these packages:\n\n' + notices);
console.log(`built ${js} ${css}`);
