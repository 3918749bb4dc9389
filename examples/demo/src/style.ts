/**
 * ANSI colours for the demo's trace, and when to use them. Colours go only to a terminal that can show
 * them: `FORCE_COLOR` forces them on (`0` or `false`: off), `NO_COLOR` (any non-empty value) and
 * `NODE_DISABLE_COLORS` turn them off, and otherwise the stream must be a colour-capable TTY. So
 * `npm run demo > file` and `npm run demo:check` write plain text.
 */
import * as util from 'node:util';

/** A colour or modifier name `util.styleText` and `util.inspect.colors` know. */
type Format =
  'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'cyanBright' | 'magenta' | 'magentaBright' | 'blueBright';

/** Colours per role; `actor` gives each service or worker a colour of its own, the same on every line. */
export interface Paint {
  /** Whether escape codes are written at all. */
  readonly enabled: boolean;
  /** The demo's banner and chapter titles. */
  readonly title: (text: string) => string;
  /** A chapter number or a step of an example. */
  readonly step: (text: string) => string;
  /** A queue, topic or URL. */
  readonly name: (text: string) => string;
  /** An error code (`FERRY_…`). */
  readonly code: (text: string) => string;
  /** Something that went as it should. */
  readonly ok: (text: string) => string;
  /** A failure the story shows on purpose (a thrown handler, a refused publish). */
  readonly bad: (text: string) => string;
  /** A chapter skipped, a duplicate. */
  readonly warn: (text: string) => string;
  /** Detail that supports a line (header names, error messages). */
  readonly dim: (text: string) => string;
  /** A worker, service instance or listener: one colour per actor (`billing-1` and `billing-2` share one). */
  readonly actor: (text: string) => string;
}

const ACTOR_COLOURS: readonly Format[] = ['magenta', 'blueBright', 'cyanBright', 'magentaBright'];

/**
 * Whether `stream` gets colours, following the `FORCE_COLOR` / `NO_COLOR` conventions (see above). A
 * TTY's `hasColors()` also honours `TERM=dumb`.
 */
export function wantsColour(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env['FORCE_COLOR'];
  if (force !== undefined) return force !== '0' && force !== 'false';
  if ((env['NO_COLOR'] ?? '') !== '' || env['NODE_DISABLE_COLORS'] !== undefined) return false;
  return stream.isTTY === true && typeof stream.hasColors === 'function' && stream.hasColors();
}

/**
 * `util.styleText` (Node ≥ 20.12) without its own stream check: the decision is {@link wantsColour}'s,
 * made once. Older Node 20 releases get the same codes from `util.inspect.colors`.
 */
function styler(format: Format): (text: string) => string {
  if (typeof util.styleText === 'function') {
    return (text) => util.styleText(format, text, { validateStream: false });
  }
  const [open, close] = util.inspect.colors[format] ?? [0, 0];
  return (text) => `\u001b[${open}m${text}\u001b[${close}m`;
}

/** The actor a label names: `worker-a` → `worker`, `demo-1a2b3-payment-2` → `payment`, `user-service-1` → `user-service`. */
function actorOf(label: string): string {
  return label.replace(/-\d+$/, '').replace(/^demo-[0-9a-f]+-/, '');
}

/** Colours for a stream: plain text when {@link wantsColour} says no. */
export function paintFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Paint {
  const enabled = wantsColour(stream, env);
  const plain = (text: string): string => text;
  const use = (...formats: Format[]): ((text: string) => string) => {
    if (!enabled) return plain;
    const steps = formats.map(styler);
    return (text) => steps.reduce((styled, step) => step(styled), text);
  };
  const actors = new Map<string, (text: string) => string>();
  return {
    enabled,
    title: use('bold'),
    step: use('bold', 'cyan'),
    name: use('cyan'),
    code: use('yellow'),
    ok: use('green'),
    bad: use('red'),
    warn: use('yellow'),
    dim: use('dim'),
    actor: (text) => {
      if (!enabled) return text;
      const key = actorOf(text);
      let paint = actors.get(key);
      if (paint === undefined) {
        paint = use(ACTOR_COLOURS[actors.size % ACTOR_COLOURS.length] ?? 'cyan');
        actors.set(key, paint);
      }
      return paint(text);
    },
  };
}

/** The colours of standard output, where the trace goes. */
export const paint: Paint = paintFor(process.stdout);
