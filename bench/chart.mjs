// Redraws the chart of a bench run against an earlier one: the earlier ratios pale, the later ones full.
//   node bench/chart.mjs bench/results/before-2a916fe.json bench/results/latest.json docs/performance.svg
import { readFileSync, writeFileSync } from 'node:fs';
import { chart } from './lib/report.mjs';

const [beforeFile, afterFile, outFile] = process.argv.slice(2);
if (!beforeFile || !afterFile || !outFile) {
  throw new Error('usage: node bench/chart.mjs <before.json> <after.json> <out.svg>');
}
const before = JSON.parse(readFileSync(beforeFile, 'utf8'));
const after = JSON.parse(readFileSync(afterFile, 'utf8'));
const transports = new Set(['amqp', 'mqtt', 'stomp']);
const sections = new Map([...transports].map((id) => [id, { goals: true }]));
const svg = chart(after.rows, {
  sections,
  before: before.rows,
  title: `Ferry ÷ raw client: before (${before.machine.date}) and after (${after.machine.date})`,
});
writeFileSync(outFile, `${svg}\n`);
