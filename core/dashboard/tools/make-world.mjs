// Makes core/dashboard/ui/world.json, the dashboard's world map: every
// country of Natural Earth's 1:110m countries (public domain), from npm's
// `world-atlas` package (ISC), projected once (Natural Earth I), simplified
// and written as SVG path data with the ISO 3166-1 alpha-2 code of each
// country (world-atlas ids are ISO numeric; `i18n-iso-countries`, MIT,
// gives the alpha-2 code). Run once; the output is committed:
//
//   cd "$(mktemp -d)" && npm install world-atlas@2.0.2 topojson-client@3.1.0 i18n-iso-countries@7.14.0
//   node /path/to/core/dashboard/tools/make-world.mjs "$PWD/node_modules" > /path/to/core/dashboard/ui/world.json
//
// Antarctica is left out (no attack comes from there, and it would take a
// fifth of the map's height).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const modules = process.argv[2];
if (!modules) {
  process.stderr.write('usage: node make-world.mjs NODE_MODULES_DIR > world.json\n');
  process.exit(2);
}
const require = createRequire(join(modules, 'noop.js'));
const topojson = require('topojson-client');
const iso = require('i18n-iso-countries');
const topo = JSON.parse(readFileSync(join(modules, 'world-atlas/countries-110m.json'), 'utf8'));
const version = JSON.parse(readFileSync(join(modules, 'world-atlas/package.json'), 'utf8')).version;

// Natural Earth I projection (Šavrič, Jenny, Patterson, Petrovič, Hurni 2011).
function project(lon, lat) {
  const l = (lon * Math.PI) / 180;
  const p = (lat * Math.PI) / 180;
  const p2 = p * p;
  const p4 = p2 * p2;
  return [
    l * (0.8707 - 0.131979 * p2 + p4 * (-0.013791 + p4 * (0.003971 * p2 - 0.001529 * p4))),
    p * (1.007226 + p2 * (0.015085 + p4 * (-0.044475 + 0.028874 * p2 - 0.005916 * p4))),
  ];
}

const WIDTH = 1000;
const [xMax] = project(180, 0);
const scale = WIDTH / (2 * xMax);
const TOP = 84; // northernmost land
const BOTTOM = -56; // southernmost land without Antarctica (Tierra del Fuego)
const yTop = project(0, TOP)[1];
const yBottom = project(0, BOTTOM)[1];
const HEIGHT = Math.ceil((yTop - yBottom) * scale) + 4;
const toSvg = ([lon, lat]) => {
  const [x, y] = project(lon, lat);
  return [(x + xMax) * scale, (yTop - y) * scale + 2];
};

// Douglas–Peucker on projected points.
function simplify(points, tolerance) {
  if (points.length <= 3) return points;
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [a, b] = stack.pop();
    const [ax, ay] = points[a];
    const [bx, by] = points[b];
    const dx = bx - ax;
    const dy = by - ay;
    const len = Math.hypot(dx, dy);
    let worst = -1;
    let far = 0;
    for (let i = a + 1; i < b; i++) {
      const [px, py] = points[i];
      // A closed ring starts and ends on one point: then the distance to it.
      const d = len ? Math.abs(dy * (px - ax) - dx * (py - ay)) / len : Math.hypot(px - ax, py - ay);
      if (d > far) {
        far = d;
        worst = i;
      }
    }
    if (worst >= 0 && far > tolerance) {
      keep[worst] = 1;
      stack.push([a, worst], [worst, b]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

const round = (v) => Math.round(v * 10) / 10;
const num = (v) => {
  const s = String(round(v));
  return s.startsWith('0.') ? s.slice(1) : s.startsWith('-0.') ? '-' + s.slice(2) : s;
};

function ringPath(ring) {
  const pts = simplify(ring.map(toSvg), 0.35).map(([x, y]) => [round(x), round(y)]);
  if (pts.length < 3) return '';
  let d = 'M' + num(pts[0][0]) + ' ' + num(pts[0][1]);
  let [px, py] = pts[0];
  const rel = [];
  for (const [x, y] of pts.slice(1)) {
    const dx = round(x - px);
    const dy = round(y - py);
    if (dx === 0 && dy === 0) continue;
    rel.push(num(dx) + (dy < 0 ? '' : ' ') + num(dy));
    px = x;
    py = y;
  }
  if (rel.length < 2) return '';
  return d + 'l' + rel.join(' ').replace(/ -/g, '-') + 'z';
}

// A ring that crosses the antimeridian (a step of more than 180° in
// longitude) as a continuous ring past ±180°, twice: as it is and shifted by
// a full turn, so that the map's edges cut both copies where they belong.
function unwrapped(ring) {
  let shift = 0;
  let crossed = false;
  const out = ring.map(([lon, lat], i) => {
    if (i > 0) {
      const prev = ring[i - 1][0];
      if (lon - prev > 180) shift -= 360;
      else if (prev - lon > 180) shift += 360;
      if (shift) crossed = true;
    }
    return [lon + shift, lat];
  });
  if (!crossed) return [ring];
  const minLon = Math.min(...out.map(([lon]) => lon));
  const turn = minLon < -180 ? 360 : -360;
  return [out, out.map(([lon, lat]) => [lon + turn, lat])];
}

// Names in world-atlas without an ISO number.
const byName = { Kosovo: 'XK' };

const countries = [];
for (const f of topojson.feature(topo, topo.objects.countries).features) {
  const name = f.properties && f.properties.name;
  const code = (f.id && iso.numericToAlpha2(f.id)) || byName[name] || null;
  if (code === 'AQ') continue;
  const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
  const d = polys.flatMap((poly) => poly.flatMap(unwrapped).map(ringPath)).filter(Boolean).join('');
  if (!d) continue;
  countries.push({ code, name, d });
}
countries.sort((a, b) => (a.code || '~' + a.name).localeCompare(b.code || '~' + b.name));

process.stdout.write(JSON.stringify({
  source: `Natural Earth 1:110m countries (public domain) via world-atlas ${version} (ISC); Natural Earth I projection; Antarctica left out`,
  width: WIDTH,
  height: HEIGHT,
  countries,
}) + '\n');
