// `npm run bench`: every scenario in one run on this machine's brokers, with a progress bar, then the Markdown
// table (printed and written), the JSON and the SVG chart under bench/results/.
//
//   npm run bench                     the default run (bounded to about 10 minutes)
//   npm run bench -- --quick          a short pass proving the bench still works (CI runs it; numbers are noise)
//   npm run bench -- --only amqp,cache
//
// Environment: FERRY_BENCH_AMQP_URL, FERRY_BENCH_MQTT_URL, FERRY_BENCH_STOMP_URL, FERRY_BENCH_REDIS_URL
// override the default broker addresses.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine.mjs';
import { Progress } from './lib/progress.mjs';
import { chart, comparisons, markdown } from './lib/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** The scenario modules, in the order they run. Each exports `name`, `steps(ctx)` and `run(ctx)`. */
const MODULES = ['memory', 'amqp', 'mqtt', 'stomp', 'peers', 'cache', 'heap'];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    out: { type: 'string' },
  },
});

const quick = values.quick;
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : undefined;
const reps = Number(values.reps ?? (quick ? 1 : 3));
const warmup = quick ? 0 : 1;
const outDir = values.out ?? join(here, 'results');
const selected = MODULES.filter((m) => !only || only.has(m));
if (only)
  for (const m of only)
    if (!MODULES.includes(m)) throw new Error(`bench: no scenario module '${m}' (have ${MODULES.join(', ')})`);

const rows = [];
const sections = new Map();
const modules = [];
for (const name of selected) modules.push(await import(`./scenarios/${name}.mjs`));

const ctx = {
  quick,
  reps,
  warmup,
  urls: {
    amqp: process.env.FERRY_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    mqtt: process.env.FERRY_BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
    stomp: process.env.FERRY_BENCH_STOMP_URL ?? 'stomp://guest:guest@127.0.0.1:61613',
    redis: process.env.FERRY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  },
  /** `n` in the default run, a tenth of it (at least `min`) in a quick pass. */
  scale(n, min = 100) {
    return quick ? Math.max(min, Math.round(n / 10)) : n;
  },
  section(id, meta) {
    sections.set(id, { ...(sections.get(id) ?? {}), ...meta });
  },
  record(row) {
    if (!row.section || !row.scenario || !row.subject || !row.metrics) throw new Error('bench: incomplete row');
    rows.push(row);
  },
  step: (label) => progress.step(label),
  status: (label) => progress.status(label),
  log: (line) => progress.log(line),
};

const totalSteps = modules.reduce((sum, m) => sum + m.steps(ctx), 0);
const progress = new Progress(totalSteps);
const machine = await machineInfo();
progress.log(
  `bench: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, RabbitMQ ${machine.rabbitmq}, ` +
    `Mosquitto ${machine.mosquitto}, Redis ${machine.redis}; ${quick ? 'quick pass' : `${reps} reps + ${warmup} warm-up`}`,
);

const failures = [];
for (const module of modules) {
  progress.status(module.name);
  try {
    await module.run(ctx);
  } catch (error) {
    failures.push(`${module.name}: ${error?.stack ?? error}`);
    progress.log(`bench: ${module.name} failed: ${error?.message ?? error}`);
  }
}
progress.finish();

const durationMs = progress.elapsedMs;
const options = { quick, reps, warmup, only: only ? [...only] : undefined };
const report = markdown({ machine, options, durationMs, rows, sections });
const prefix = quick ? 'quick' : only ? `partial-${[...only].join('-')}` : 'latest';
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `${prefix}.md`), `${report}\n`);
writeFileSync(
  join(outDir, `${prefix}.json`),
  `${JSON.stringify({ machine, options, durationMs, rows, comparisons: comparisons(rows), failures }, null, 2)}\n`,
);
writeFileSync(join(outDir, `${prefix}.svg`), `${chart(rows, { sections })}\n`);
process.stdout.write(`${report}\n`);
process.stderr.write(`bench: wrote ${join(outDir, prefix)}.{md,json,svg}\n`);
if (failures.length > 0) {
  process.stderr.write(`bench: ${failures.length} scenario module(s) failed:\n${failures.join('\n')}\n`);
  process.exitCode = 1;
}
