import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { uniqueName } from '@ferry/conformance';

const run = promisify(execFile);

/** A free TCP port on loopback. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function uid(user: string): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * A private RabbitMQ node with its own name, ports and data directory, for tests that must not touch the
 * shared node (alarms, crashes). Boots in a few seconds; `stop()` stops exactly this node and removes its files.
 */
export interface PrivateNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  ctl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Extra settings of a private node: more `rabbitmq.conf` lines and files written next to it (owned by rabbitmq). */
export interface PrivateNodeOptions {
  /** Lines appended to rabbitmq.conf; `{dir}` is replaced by the node's directory. */
  readonly config?: readonly string[];
  /** Files to write into the node's directory before it starts (name → content). */
  readonly files?: Readonly<Record<string, string>>;
  /** Extra TCP ports to reserve; `{port0}`, `{port1}`… in `config` are replaced by them. */
  readonly extraPorts?: number;
}

export async function startPrivateNode(
  options: PrivateNodeOptions = {},
): Promise<PrivateNode & { readonly extraPorts: readonly number[]; readonly dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-rabbit-'));
  const [port, distPort, owner] = await Promise.all([freePort(), freePort(), uid('rabbitmq')]);
  const name = `${uniqueName('ferry')}@localhost`;
  const extraPorts = await Promise.all(Array.from({ length: options.extraPorts ?? 0 }, () => freePort()));
  const fill = (line: string): string =>
    extraPorts.reduce((text, p, i) => text.replaceAll(`{port${i}}`, String(p)), line.replaceAll('{dir}', dir));
  const config = [`listeners.tcp.local = 127.0.0.1:${port}`, ...(options.config ?? []).map(fill)];
  await writeFile(join(dir, 'rabbitmq.conf'), `${config.join('\n')}\n`);
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  const written = [dir, join(dir, 'rabbitmq.conf'), join(dir, 'enabled_plugins')];
  for (const [file, content] of Object.entries(options.files ?? {})) {
    await writeFile(join(dir, file), content);
    written.push(join(dir, file));
  }
  for (const path of written) await chown(path, owner.uid, owner.gid);
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: name,
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const ctl = async (...args: string[]): Promise<string> =>
    (await run('rabbitmqctl', ['-n', name, ...args], { timeout: 120_000 })).stdout;
  await run('rabbitmq-server', ['-detached'], { env, timeout: 60_000 });
  try {
    // The node registers with epmd a moment after -detached returns; await_startup fails until then.
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await ctl('await_startup', '--timeout', '30');
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } catch (error) {
    await ctl('stop').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    name,
    port,
    extraPorts,
    dir,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    ctl,
    stop: async () => {
      await ctl('stop').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
