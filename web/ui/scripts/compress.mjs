// Precompresses the built UI: every file gets a .gz twin at the best level, so the Go
// handler serves gzip without spending CPU per request. Files that do not shrink are left alone.
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

const root = process.argv[2];
if (!root) throw new Error('usage: compress.mjs DIR');
let raw = 0, gz = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { walk(p); continue; }
    if (name.endsWith('.gz')) continue;
    const data = readFileSync(p);
    const z = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
    raw += data.length;
    if (z.length < data.length) { writeFileSync(p + '.gz', z); gz += z.length; } else { gz += data.length; }
  }
}
walk(root);
console.log(`ui: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`);
