// The memory transport: Ferry's own per-message cost with no network. Publish → encode → in-process
// queue → decode → handler → ack, through the same code paths every transport uses, against the floor of
// what any JSON messaging must do (JSON.stringify + Buffer.from + JSON.parse of the same 1 KiB object).
//
// - end to end, c=1 and c=100: as in every transport section (bench/lib/ferry.mjs), msg/s and the process's
//   CPU time per message (user + system), which is less disturbed by other processes than wall time.
// - allocation: heap bytes allocated per message, measured in a child process whose young generation is
//   large enough that no garbage collection runs during the measured messages (checked: a run that saw a
//   GC is reported as such), so the growth of `heapUsed` is everything the messages allocated.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ferryThroughput } from '../lib/ferry.mjs';
import { kibPayload, repeat } from '../lib/stats.mjs';

export const name = 'memory';

const SECTION = 'memory';
const runFile = promisify(execFile);

export function steps() {
  return 4;
}

function floorRun(n) {
  const payload = kibPayload();
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < n; i++) sink += JSON.parse(Buffer.from(JSON.stringify(payload)).toString()).seq + 1;
  if (sink !== n) throw new Error('bench: floor run lost messages');
  const used = process.cpuUsage(cpu);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { 'msg/s': n / seconds, 'cpu µs/msg': (used.user + used.system) / n };
}

async function ferryRun(n, window, concurrency) {
  const cpu = process.cpuUsage();
  const { metrics } = await ferryThroughput({ url: 'memory://bench', n, window, concurrency, durable: false });
  const used = process.cpuUsage(cpu);
  return { ...metrics, 'cpu µs/msg': (used.user + used.system) / n };
}

export async function run(ctx) {
  ctx.section(SECTION, {
    title: 'Memory transport: Ferry’s own overhead, no network',
    description:
      'Publish → handler in one process through the in-memory transport, 1 KiB JSON messages. ' +
      'The floor row is what any JSON messaging must do per message (stringify, buffer, parse).',
    notes: [
      'cpu µs/msg is the process’s user + system CPU time divided by the messages, garbage collection included.',
      'bytes/msg is heap allocated per message, measured with no GC during the run (a 1 GiB young generation).',
    ],
  });
  const n = ctx.scale(50_000, 2_000);
  ctx.step('memory: floor');
  const floor = await repeat({ reps: ctx.reps, warmup: ctx.warmup, once: () => floorRun(n) });
  ctx.record({ section: SECTION, scenario: 'floor (JSON only)', subject: 'JSON + Buffer', ...floor });
  for (const [window, concurrency] of [
    [100, 100],
    [1, 1],
  ]) {
    ctx.step(`memory: end to end c=${concurrency}`);
    const result = await repeat({
      reps: ctx.reps,
      warmup: ctx.warmup,
      once: () => ferryRun(n, window, concurrency),
    });
    ctx.record({ section: SECTION, scenario: `e2e c=${concurrency}`, subject: 'ferry', ...result });
  }
  ctx.step('memory: allocation per message');
  const child = fileURLToPath(new URL('./memory-allocation.mjs', import.meta.url));
  const count = ctx.quick ? 2_000 : 5_000;
  const { stdout } = await runFile(
    process.execPath,
    ['--min-semi-space-size=1024', '--max-semi-space-size=1024', '--expose-gc', child, String(count)],
    { timeout: 120_000 },
  );
  const allocation = JSON.parse(stdout.trim().split('\n').pop());
  ctx.record({
    section: SECTION,
    scenario: 'allocation',
    subject: 'ferry',
    metrics: { 'bytes/msg': allocation.ferry, 'floor bytes/msg': allocation.floor },
    note:
      allocation.gcs > 0
        ? `${allocation.gcs} garbage collection(s) ran during the measurement: the figure is a lower bound`
        : `no garbage collection during ${count} messages; the floor (JSON + Buffer only) allocates ${Math.round(allocation.floor)} bytes/msg`,
  });
}
