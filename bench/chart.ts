/**
 * The chart of the published page (docs/benchmarks.svg): a bar chart, SVG with no dependencies,
 * of each system's aggregate MiB/s per read workload, cache state and reader count, log scale.
 */
import type { BenchResults } from './results.js';
import { NAMES, systemOrder, type System } from './systems.js';

/** A bar chart (SVG, no dependencies): MiB/s of each system per read workload. */
export function svgChart(res: BenchResults): string {
  const groups: { label: string; bars: { sys: System; v: number }[] }[] = [];
  const keys = [...new Set(res.reads.map((r) => `${r.workload}|${r.cache}|${r.readers}`))];
  keys.sort((a, b) => {
    const [wa, ca, na] = a.split('|');
    const [wb, cb, nb] = b.split('|');
    return wa.localeCompare(wb) || ca.localeCompare(cb) || Number(na) - Number(nb);
  });
  for (const k of keys) {
    const [w, c, n] = k.split('|');
    const bars = res.reads
      .filter((r) => r.workload === w && r.cache === c && r.readers === Number(n))
      .sort((a, b) => systemOrder(a.system) - systemOrder(b.system))
      .map((r) => ({ sys: r.system, v: r.MiBps }));
    groups.push({ label: `${w} ${c} ×${n}`, bars });
  }
  const colors: Record<System, string> = {
    cairn: '#2b6cb0',
    'cairn-file': '#63b3ed',
    local: '#718096',
    floor: '#a0aec0',
    s3get: '#38a169',
    s3fs: '#dd6b20',
    rclone: '#b83280',
  };
  const max = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.v)));
  const logMax = Math.log10(max * 1.2);
  const bw = 14;
  const gap = 22;
  const left = 60;
  const top = 40;
  const h = 260;
  let x = left;
  const parts: string[] = [];
  for (const g of groups) {
    const gx = x;
    for (const b of g.bars) {
      const bh = b.v > 1 ? (Math.log10(b.v) / logMax) * h : 1;
      parts.push(
        `<rect x="${x}" y="${(top + h - bh).toFixed(1)}" width="${bw - 2}" height="${bh.toFixed(1)}" fill="${colors[b.sys]}"><title>${NAMES[b.sys]}: ${b.v} MiB/s</title></rect>`,
      );
      x += bw;
    }
    parts.push(
      `<text x="${((gx + x) / 2).toFixed(1)}" y="${top + h + 14}" font-size="10" text-anchor="end" transform="rotate(-35 ${((gx + x) / 2).toFixed(1)} ${top + h + 14})">${g.label}</text>`,
    );
    x += gap;
  }
  const width = x + 20;
  const ticks: string[] = [];
  for (let p = 0; 10 ** p <= max * 1.2; p++) {
    const y = top + h - (p / logMax) * h;
    ticks.push(
      `<line x1="${left - 4}" x2="${width - 10}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e2e8f0"/><text x="${left - 6}" y="${(y + 3).toFixed(1)}" font-size="10" text-anchor="end">${10 ** p}</text>`,
    );
  }
  const legend = (Object.keys(colors) as System[])
    .filter((s) => res.reads.some((r) => r.system === s))
    .map(
      (s, i) =>
        `<rect x="${left + i * 120}" y="10" width="10" height="10" fill="${colors[s]}"/><text x="${left + i * 120 + 14}" y="19" font-size="11">${NAMES[s]}</text>`,
    );
  const height = top + h + 90;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...ticks,
    ...parts,
    ...legend,
    `<text x="12" y="${top + h / 2}" font-size="11" transform="rotate(-90 12 ${top + h / 2})" text-anchor="middle">aggregate MiB/s (log scale)</text>`,
    '</svg>',
  ].join('\n');
}
