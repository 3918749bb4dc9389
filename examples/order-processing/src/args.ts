import { hostname } from 'node:os';
import { checkPrefix, DEFAULT_PREFIX, SERVICE_NAMES, type ServiceName } from './contract.js';

export const DEFAULT_URL = 'memory://';

export const USAGE = `usage: node examples/order-processing/dist/main.js [options]

Without --service: the whole story in one process (the shop and every service), then exit.
  --url <url>          broker URL (or FERRY_URL; default ${DEFAULT_URL}):
                       memory://, amqp://guest:guest@127.0.0.1:5672, mqtt://127.0.0.1:1883,
                       stomp://guest:guest@127.0.0.1:61613
  --orders <n>         orders in the first round (default 6)
  --instances <n>      instances per service (default 2; 1 with --service)
  --prefix <p>         topic <p>.order.placed (default ${DEFAULT_PREFIX}): keeps runs apart
  --instance <name>    first part of the instance names <name>-<service>-<n>: stable per process,
                       unique among running ones (default: the prefix; with --service the host name)
  --no-redis           the in-process idempotency store even if Redis answers at REDIS_URL
  --service <s>        run one part only, against a real broker:
                       payment | inventory | shipping   its instances, until Ctrl-C
                       shop                             place --orders orders, then exit
  -h, --help`;

/** What the command line asks for. */
export interface Args {
  readonly url: string;
  readonly prefix: string;
  readonly orders: number;
  readonly instances: number;
  readonly instanceBase: string;
  readonly redis: 'auto' | 'off';
  readonly service: ServiceName | 'shop' | undefined;
  readonly help: boolean;
}

/** A wrong command line: the message says what, and the usage follows. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const VALUED = ['--url', '--orders', '--instances', '--prefix', '--instance', '--service'] as const;
type Valued = (typeof VALUED)[number];

function count(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} must be an integer in [1, ${max}]`);
  return n;
}

/** A host name as a valid instance name part: letters, digits, `.`, `_`, `-`. */
function defaultInstance(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 40) || 'host'
  );
}

/** Parses `argv` (without node and the script); `env` supplies `FERRY_URL`. @throws UsageError */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Args {
  const values = new Map<Valued, string>();
  let redis: 'auto' | 'off' = 'auto';
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '--no-redis') {
      redis = 'off';
      continue;
    }
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg];
    if (!(VALUED as readonly string[]).includes(flag ?? '')) throw new UsageError(`unknown argument "${arg}"`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    values.set(flag as Valued, value);
  }
  const service = values.get('--service');
  if (service !== undefined && service !== 'shop' && !(SERVICE_NAMES as readonly string[]).includes(service)) {
    throw new UsageError(`--service must be one of ${[...SERVICE_NAMES, 'shop'].join(', ')}`);
  }
  const fromEnv = env['FERRY_URL'];
  const url = values.get('--url') ?? (fromEnv === undefined || fromEnv === '' ? DEFAULT_URL : fromEnv);
  let prefix: string;
  try {
    prefix = checkPrefix(values.get('--prefix') ?? DEFAULT_PREFIX);
  } catch (error) {
    throw new UsageError(`--prefix: ${(error as Error).message}`);
  }
  const instanceBase = values.get('--instance') ?? (service === undefined ? prefix : defaultInstance());
  if (!/^[A-Za-z0-9._-]{1,48}$/.test(instanceBase)) {
    throw new UsageError('--instance must be 1-48 letters, digits, ".", "_" or "-"');
  }
  const instances = values.get('--instances');
  const orders = values.get('--orders');
  return {
    url,
    prefix,
    orders: orders === undefined ? 6 : count(orders, '--orders', 10_000),
    instances: instances === undefined ? (service === undefined ? 2 : 1) : count(instances, '--instances', 16),
    instanceBase,
    redis,
    service: service as Args['service'],
    help,
  };
}
