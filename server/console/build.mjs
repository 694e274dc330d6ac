// Builds the console: type-checks with tsc (a type error fails the build), bundles
// src/main.tsx and its CSS with esbuild, and writes OUT/index.html, OUT/assets/app.js,
// OUT/assets/app.css (plus the CSS's icons as files: a strict CSP allows no data: URLs).
// Usage: node build.mjs --out DIR [--no-typecheck]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
if (outArg < 0 || !args[outArg + 1]) {
  console.error('usage: node build.mjs --out DIR [--no-typecheck]');
  process.exit(2);
}
const out = resolve(args[outArg + 1]);
const assets = join(out, 'assets');

if (!args.includes('--no-typecheck')) {
  const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', join(here, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error('console: type check failed');
    process.exit(1);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

// data: URLs in the CSS (Pico's icons) become files beside it, named by their content.
const cssPath = join(assets, 'app.css');
let css = readFileSync(cssPath, 'utf8');
css = css.replace(/url\(\s*(?:"data:image\/svg\+xml,([^"]*)"|'data:image\/svg\+xml,([^']*)')\s*\)/g, (_m, d, s) => {
  const body = d ?? s;
  const svg = decodeURIComponent(body);
  const name = 'icon-' + createHash('sha256').update(svg).digest('hex').slice(0, 12) + '.svg';
  writeFileSync(join(assets, name), svg);
  return `url("${name}")`;
});
if (/url\(\s*["']?data:/.test(css)) {
  console.error('console: a data: URL is left in app.css (the CSP refuses it)');
  process.exit(1);
}
writeFileSync(cssPath, css);
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'src', 'favicon.svg'), join(assets, 'favicon.svg'));

const sizes = ['app.js', 'app.css']
  .map((f) => {
    const bytes = readFileSync(join(assets, f));
    return `${f}=${bytes.length} gz=${gzipSync(bytes, { level: 9 }).length}`;
  })
  .join(' ');
const icons = readdirSync(assets).filter((f) => f.startsWith('icon-'));
const iconBytes = icons.reduce((n, f) => n + statSync(join(assets, f)).size, 0);
console.log(`console: bundle ${sizes} icons=${icons.length} (${iconBytes} bytes)`);
