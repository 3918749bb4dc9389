// Turns the rows the scenarios recorded into the Markdown table, the JSON file and the SVG chart.
//
// A row is { section, scenario, subject, baseline?, metrics: { 'msg/s': n, 'p99 µs': n, … }, runs?, note? }.
// Within one (section, scenario), the row marked `baseline` is what the others are divided by: the raw client
// for a transport, amqplib for the peers, a plain Map for the cache.

/** Metrics where more is better; every other compared metric is a cost, where less is better. */
const HIGHER_IS_BETTER = new Set(['msg/s', 'ops/s', 'events/s']);
/** The metrics a ratio is given for, in display order. */
const COMPARED = ['msg/s', 'ops/s', 'events/s', 'p99 µs', 'ns/op', 'µs/op'];
/** Goals from issue 10 for a transport against its raw client. */
export const GOALS = { throughput: 0.95, p99: 1.1 };

export function formatNumber(value, unit = '') {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  const abs = Math.abs(value);
  if (unit.includes('/s') || abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function groupBy(rows, key) {
  const groups = new Map();
  for (const row of rows) {
    const k = key(row);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(row);
  }
  return groups;
}

/** The ratios of `row` against the baseline of its scenario: { 'msg/s': 0.97, 'p99 µs': 1.04, … }. */
export function ratiosOf(row, baseline) {
  const out = {};
  if (!baseline || baseline === row) return out;
  for (const metric of COMPARED) {
    const a = row.metrics[metric];
    const b = baseline.metrics[metric];
    if (typeof a === 'number' && typeof b === 'number' && b > 0) out[metric] = a / b;
  }
  return out;
}

function verdict(metric, ratio, goals) {
  if (!goals) return '';
  if (HIGHER_IS_BETTER.has(metric)) return ratio >= goals.throughput ? ' ✓' : ' ✗';
  if (metric === 'p99 µs') return ratio <= goals.p99 ? ' ✓' : ' ✗';
  return '';
}

function ratioText(row, baseline, goals) {
  const ratios = ratiosOf(row, baseline);
  return Object.entries(ratios)
    .map(([metric, ratio]) => `${ratio.toFixed(2)}× ${metric.replace(' µs', '')}${verdict(metric, ratio, goals)}`)
    .join(', ');
}

/** Every (section, scenario) comparison of a Ferry row against its baseline, for the chart and the note. */
export function comparisons(rows) {
  const out = [];
  for (const [, group] of groupBy(rows, (r) => `${r.section}\u0000${r.scenario}`)) {
    const baseline = group.find((r) => r.baseline);
    if (!baseline) continue;
    for (const row of group) {
      if (row === baseline) continue;
      out.push({
        section: row.section,
        scenario: row.scenario,
        subject: row.subject,
        baseline: baseline.subject,
        ratios: ratiosOf(row, baseline),
      });
    }
  }
  return out;
}

/** The Markdown report: machine, then one table per section, then the sections' notes. */
export function markdown({ machine, options, durationMs, rows, sections }) {
  const lines = [];
  lines.push(`# Ferry benchmarks${options.quick ? ' (quick pass: figures are not comparable)' : ''}`, '');
  lines.push(
    `Run ${machine.date} on ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; ` +
      `RabbitMQ ${machine.rabbitmq}, Mosquitto ${machine.mosquitto}, Redis ${machine.redis}. ` +
      `${options.reps} measured repetition(s) after ${options.warmup} warm-up, medians shown; ` +
      `the whole run took ${(durationMs / 60000).toFixed(1)} min.`,
    '',
  );
  for (const [section, group] of groupBy(rows, (r) => r.section)) {
    const meta = sections.get(section) ?? {};
    lines.push(`## ${meta.title ?? section}`, '');
    if (meta.description) lines.push(meta.description, '');
    const metricNames = [];
    for (const row of group)
      for (const m of Object.keys(row.metrics)) if (!metricNames.includes(m)) metricNames.push(m);
    lines.push(`| scenario | subject | ${metricNames.join(' | ')} | against the baseline |`);
    lines.push(`|---|---|${metricNames.map(() => '---:').join('|')}|---|`);
    const byScenario = groupBy(group, (r) => r.scenario);
    for (const [scenario, scenarioRows] of byScenario) {
      const baseline = scenarioRows.find((r) => r.baseline);
      for (const row of scenarioRows) {
        const cells = metricNames.map((m) => formatNumber(row.metrics[m], m));
        const against = row.baseline ? '(baseline)' : ratioText(row, baseline, meta.goals ? GOALS : undefined);
        lines.push(`| ${scenario} | ${row.subject} | ${cells.join(' | ')} | ${against} |`);
      }
    }
    lines.push('');
    for (const row of group) if (row.note) lines.push(`- ${row.scenario}, ${row.subject}: ${row.note}`);
    for (const note of meta.notes ?? []) lines.push(`- ${note}`);
    if (group.some((r) => r.note) || meta.notes?.length) lines.push('');
  }
  return lines.join('\n');
}

function escapeXml(text) {
  return String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

/**
 * An SVG bar chart of Ferry against its raw client: for each transport scenario, the throughput ratio and the
 * p99 latency ratio, with the goals (0.95 and 1.10) and parity drawn as lines. With `before` (the rows of an
 * earlier run), each bar has the earlier run's ratio drawn pale above it.
 */
export function chart(rows, { sections, before, title = 'Ferry ÷ raw client, per transport scenario' } = {}) {
  const earlier = new Map(
    (before === undefined ? [] : comparisons(before))
      .filter((c) => c.subject === 'ferry')
      .map((c) => [`${c.section}\u0000${c.scenario}`, c.ratios]),
  );
  const items = comparisons(rows).filter(
    (c) =>
      c.subject === 'ferry' &&
      (sections === undefined || sections.get(c.section)?.goals === true) &&
      (c.ratios['msg/s'] !== undefined || c.ratios['p99 µs'] !== undefined),
  );
  const barH = 11;
  const rowH = (before === undefined ? 1 : 2) * barH + 12;
  const left = 330;
  const width = 900;
  const plotW = width - left - 40;
  const top = 56;
  const height = top + items.length * rowH + 40;
  const shown = items.flatMap((c) => {
    const was = earlier.get(`${c.section}\u0000${c.scenario}`) ?? {};
    return [c.ratios['msg/s'], c.ratios['p99 µs'], was['msg/s'], was['p99 µs']].filter((v) => v !== undefined);
  });
  const max = Math.max(2, ...shown) * 1.12;
  const x = (v) => left + (Math.min(v, max) / max) * plotW;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${left}" y="30" width="12" height="10" fill="#2f6db5"/><text x="${left + 16}" y="39">throughput (goal ≥ 0.95)</text>`,
    `<rect x="${left + 190}" y="30" width="12" height="10" fill="#e07b27"/><text x="${left + 206}" y="39">p99 latency (goal ≤ 1.10)</text>`,
    ...(before === undefined
      ? []
      : [
          `<rect x="${left + 380}" y="30" width="12" height="10" fill="#bbbbbb"/><text x="${left + 396}" y="39">pale: before</text>`,
        ]),
  );
  for (const [value, colour, dash] of [
    [1, '#444', ''],
    [GOALS.throughput, '#2f6db5', '4 3'],
    [GOALS.p99, '#e07b27', '4 3'],
  ]) {
    out.push(
      `<line x1="${x(value)}" y1="${top - 6}" x2="${x(value)}" y2="${height - 30}" stroke="${colour}" stroke-width="1" ${dash ? `stroke-dasharray="${dash}"` : ''}/>`,
    );
  }
  for (let tick = 0; tick <= max; tick += 0.5) {
    out.push(`<text x="${x(tick)}" y="${height - 14}" text-anchor="middle" fill="#555">${tick.toFixed(1)}×</text>`);
  }
  items.forEach((item, i) => {
    const y = top + i * rowH;
    out.push(
      `<text x="${left - 8}" y="${y + barH + 4}" text-anchor="end">${escapeXml(`${item.section} · ${item.scenario}`)}</text>`,
    );
    const was = earlier.get(`${item.section}\u0000${item.scenario}`) ?? {};
    for (const [metric, colour, pale] of [
      ['msg/s', '#2f6db5', '#a9c3e6'],
      ['p99 µs', '#e07b27', '#f2c29b'],
    ]) {
      const ratio = item.ratios[metric];
      if (ratio === undefined) continue;
      const bars =
        before === undefined
          ? [[ratio, colour, '']]
          : [
              [was[metric], pale, 'before '],
              [ratio, colour, ''],
            ];
      bars.forEach(([value, fill, label], j) => {
        if (value === undefined) return;
        const by = y + j * barH;
        out.push(
          `<rect x="${left}" y="${by}" width="${Math.max(1, x(value) - left)}" height="${barH - 2}" fill="${fill}"/>`,
          `<text x="${x(value) + 4}" y="${by + barH - 3}" font-size="10">${label}${value.toFixed(2)}</text>`,
        );
      });
    }
  });
  out.push('</svg>');
  return out.join('\n');
}
