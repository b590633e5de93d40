// Builds the console into crates/console/assets/ (or the directory given as
// the first argument): index.html, console.js, console.css, favicon.svg.
// Deterministic: the same sources give byte-identical files (no timestamps,
// no hashes in names, no source maps).
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const dir = args.find((a) => !a.startsWith('--'));
const out = resolve(dir || resolve(here, '../crates/console/assets'));

await mkdir(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  target: 'es2020',
  logLevel: 'warning',
  charset: 'utf8',
  absWorkingDir: here,
};

await build({
  ...common,
  entryPoints: [resolve(here, 'src/main.jsx')],
  outfile: resolve(out, 'console.js'),
  format: 'iife',
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  define: { 'process.env.NODE_ENV': '"production"' },
});

await build({
  ...common,
  entryPoints: [resolve(here, 'src/console.css')],
  outfile: resolve(out, 'console.css'),
});

await copyFile(resolve(here, 'src/index.html'), resolve(out, 'index.html'));
await copyFile(resolve(here, 'src/favicon.svg'), resolve(out, 'favicon.svg'));

if (!quiet) {
  const { stat } = await import('node:fs/promises');
  for (const f of ['index.html', 'console.js', 'console.css', 'favicon.svg']) {
    const s = await stat(resolve(out, f));
    console.log(`${f.padEnd(12)} ${s.size} bytes`);
  }
}
