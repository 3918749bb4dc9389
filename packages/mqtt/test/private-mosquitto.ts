import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IClientOptions } from 'mqtt';
import { afterAll, beforeAll } from 'vitest';
import { waitFor } from '@ferry/conformance';
import { rawClient, type MqttTarget } from './broker.js';

/** Debian's Mosquitto binary. */
export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';
/** Debian's tool that writes Mosquitto password files (salted hashes). */
export const MOSQUITTO_PASSWD_BIN = '/usr/bin/mosquitto_passwd';

const run = promisify(execFile);

/** PEM texts of a TLS listener: the CA, and the server certificate it signed with its key. */
export interface PrivateMosquittoTls {
  /** `cafile`: the CA (PEM). */
  readonly ca: string;
  /** `certfile`: the server certificate (PEM), for the name clients check (e.g. `localhost`). */
  readonly cert: string;
  /** `keyfile`: the server certificate's private key (PEM, unencrypted). */
  readonly key: string;
}

/** Options of {@link PrivateMosquitto.start}. */
export interface PrivateMosquittoOptions {
  /**
   * `autosave_interval`: how often Mosquitto writes its in-memory database (sessions, subscriptions,
   * queued messages) to disk, seconds (or changes, with `autosaveOnChanges`). Omitted: the broker's
   * default, 1800 s. The database is also written on a graceful stop and on SIGUSR1.
   */
  readonly autosaveIntervalSec?: number;
  /** `autosave_on_changes`: `autosave_interval` counts changes (subscriptions, retained and queued messages), not seconds. */
  readonly autosaveOnChanges?: boolean;
  /**
   * The listener speaks TLS only (`mqtts://`), with these files (`cafile`, `certfile`, `keyfile`) written
   * into the broker's directory. Omitted: plain MQTT.
   */
  readonly tls?: PrivateMosquittoTls;
  /**
   * Only these users may connect (`allow_anonymous false`, and a `password_file` that
   * `mosquitto_passwd -b` writes): user name → password. Omitted: anonymous clients are allowed.
   */
  readonly users?: Readonly<Record<string, string>>;
}

/** The last lines Mosquitto logged, kept for error messages. */
const LOG_LINES = 200;

/**
 * A Mosquitto the test starts itself: its own port on 127.0.0.1, its own config and persistence directory
 * in a temporary directory, run in the foreground as a child process so the test owns its PID. It can be
 * stopped gracefully (SIGTERM: Mosquitto saves its database on exit), killed (SIGKILL: whatever changed
 * since the last save is lost) and started again on the same port with the same database.
 *
 * The config keeps a queue from silently dropping messages (`max_queued_messages 0`: Mosquitto's default
 * of 1000 per client drops QoS 1 messages past it, even to a connected client whose window is full) and
 * publishes `$SYS` every second (for {@link PrivateMosquitto.storedMessages}).
 */
export class PrivateMosquitto {
  readonly dir: string;
  readonly port: number;
  readonly #options: PrivateMosquittoOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  readonly #log: string[] = [];
  /** The users of the password file (`options.users`, or the last {@link PrivateMosquitto.setUsers}). */
  #users: Readonly<Record<string, string>> | undefined;

  private constructor(dir: string, port: number, options: PrivateMosquittoOptions) {
    this.dir = dir;
    this.port = port;
    this.#options = options;
    this.#users = options.users;
  }

  /** Writes the config into a new temporary directory and starts Mosquitto on a free port. */
  static async start(options: PrivateMosquittoOptions = {}): Promise<PrivateMosquitto> {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-mosquitto-'));
    const broker = new PrivateMosquitto(dir, await freePort(), options);
    try {
      await broker.#writeConfig();
      await broker.start();
    } catch (error) {
      await broker.close();
      throw error;
    }
    return broker;
  }

  /**
   * The MQTT 5 target of this broker, for `connectMqtt` and `rawClient`: with `users`, as the first of
   * them. A TLS broker also needs {@link PrivateMosquitto.tlsClientOptions}.
   */
  get target(): MqttTarget {
    const [user] = Object.entries(this.#users ?? {});
    return {
      host: '127.0.0.1',
      port: this.port,
      protocolVersion: 5,
      ...(user === undefined ? {} : { username: user[0], password: user[1] }),
    };
  }

  /** What an mqtt.js client needs on top of {@link PrivateMosquitto.target}: TLS with the broker's CA (nothing for plain MQTT). */
  get tlsClientOptions(): IClientOptions {
    const tls = this.#options.tls;
    return tls === undefined ? {} : { protocol: 'mqtts', ca: tls.ca, servername: 'localhost' };
  }

  /** True while the Mosquitto process runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  get configPath(): string {
    return join(this.dir, 'mosquitto.conf');
  }

  get databasePath(): string {
    return join(this.dir, 'mosquitto.db');
  }

  /** The last lines Mosquitto wrote (stdout and stderr). */
  log(): string {
    return this.#log.join('\n');
  }

  async #writeConfig(): Promise<void> {
    const o = this.#options;
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      ...(o.tls === undefined
        ? []
        : [
            `cafile ${this.#file('ca.pem')}`,
            `certfile ${this.#file('server.pem')}`,
            `keyfile ${this.#file('server.key')}`,
          ]),
      ...(o.users === undefined
        ? ['allow_anonymous true']
        : ['allow_anonymous false', `password_file ${this.#file('passwd')}`]),
      'persistence true',
      `persistence_location ${this.dir}/`,
      ...(o.autosaveIntervalSec === undefined ? [] : [`autosave_interval ${o.autosaveIntervalSec}`]),
      ...(o.autosaveOnChanges === undefined ? [] : [`autosave_on_changes ${o.autosaveOnChanges}`]),
      'max_queued_messages 0',
      'set_tcp_nodelay true',
      'sys_interval 1',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
    ];
    const files: string[] = [];
    if (o.tls !== undefined) {
      for (const [name, text] of [
        ['ca.pem', o.tls.ca],
        ['server.pem', o.tls.cert],
        ['server.key', o.tls.key],
      ] as const) {
        await writeFile(this.#file(name), text, { mode: 0o600 });
        files.push(this.#file(name));
      }
    }
    // Run as root, Mosquitto drops to the user `mosquitto`, which must be able to write the database (and
    // read its key and password file, which stay private to it).
    if (process.getuid?.() === 0) {
      const ids = await userIds('mosquitto');
      if (ids === undefined) lines.push('user root');
      else for (const path of [this.dir, ...files]) await chown(path, ids.uid, ids.gid);
    }
    if (this.#users !== undefined) await this.setUsers(this.#users);
    await writeFile(this.configPath, `${lines.join('\n')}\n`);
  }

  /**
   * Writes the password file anew with these users (a broker started with `users` only); Mosquitto reads
   * it when it starts, so a running broker goes on with the old one until {@link PrivateMosquitto.restart}.
   */
  async setUsers(users: Readonly<Record<string, string>>): Promise<void> {
    if (this.#options.users === undefined)
      throw new Error('PrivateMosquitto: started without users (no password_file)');
    const entries = Object.entries(users);
    if (entries.length === 0) throw new Error('PrivateMosquitto: users needs at least one user');
    const file = this.#file('passwd');
    for (const [index, [user, password]] of entries.entries()) {
      const create = index === 0 ? ['-c'] : [];
      await run(MOSQUITTO_PASSWD_BIN, [...create, '-b', file, user, password], { timeout: 10_000 });
    }
    await chmod(file, 0o600);
    if (process.getuid?.() === 0) {
      const ids = await userIds('mosquitto');
      if (ids !== undefined) await chown(file, ids.uid, ids.gid);
    }
    this.#users = users;
  }

  #file(name: string): string {
    return join(this.dir, name);
  }

  /**
   * Starts Mosquitto (again, on the same port and database); resolves once the port accepts TCP
   * connections (a plain TCP probe: it works for a TLS listener and a broker that wants a password alike).
   */
  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`private Mosquitto on ${this.port} is already running`);
    const child = spawn(MOSQUITTO_BIN, ['-c', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.length === 0) continue;
        this.#log.push(line);
        if (this.#log.length > LOG_LINES) this.#log.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exitCode: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = signal ?? String(code);
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once('error', (error) => {
        exitCode = error.message;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    live.add(child);
    void this.#exited.then(() => live.delete(child));
    await waitFor(
      async () => {
        if (exitCode !== undefined) {
          throw new Error(`private Mosquitto on ${this.port} exited (${exitCode}) while starting:\n${this.log()}`);
        }
        return accepts(this.port);
      },
      15_000,
      () => `private Mosquitto to accept connections on ${this.port}:\n${this.log()}`,
    );
  }

  /** Graceful stop: SIGTERM, then waits for the exit (Mosquitto writes its database first). */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM', 30_000);
  }

  /** Crash: SIGKILL (`kill -9`), then waits for the exit. Nothing is saved. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL', 10_000);
  }

  /** Graceful restart on the same port, with the database the stop saved. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Crash and start again, with whatever database the last save left. */
  async crashAndRestart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /**
   * Writes the database now (SIGUSR1, as an autosave would) and waits until the new file is in place
   * (Mosquitto writes `mosquitto.db.new`, then renames it).
   */
  async save(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined) throw new Error(`private Mosquitto on ${this.port} is not running`);
    const before = await fileStamp(this.databasePath);
    child.kill('SIGUSR1');
    await waitFor(
      async () => {
        const now = await fileStamp(this.databasePath);
        return now !== undefined && now !== before && (await fileStamp(`${this.databasePath}.new`)) === undefined;
      },
      10_000,
      () => `private Mosquitto to write ${this.databasePath}:\n${this.log()}`,
    );
  }

  /**
   * Messages the broker holds, whoever they are for (queued for or in flight to a session), as of the last
   * `$SYS` tick (`sys_interval 1`): `$SYS/broker/store/messages/count` less the retained messages it
   * counts too (`$SYS` itself retains about 50). Mosquitto publishes a `$SYS` value only when it changed,
   * so the retained copies a new subscription gets are the current values. Only meaningful on a broker
   * whose only queues are the test's.
   */
  async storedMessages(timeoutMs = 5_000): Promise<number> {
    const client = await rawClient(this.target, {
      clientId: `ferry-sys-${process.pid}-${++sysClients}`,
      ...this.tlsClientOptions,
    });
    try {
      return await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no $SYS store counts from private Mosquitto on ${this.port} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        let stored: number | undefined;
        let retained: number | undefined;
        client.on('message', (topicName, payload) => {
          const value = Number(payload.toString('utf8'));
          if (topicName === STORED) stored = value;
          else if (topicName === RETAINED) retained = value;
          if (stored !== undefined && retained !== undefined) {
            clearTimeout(timer);
            resolve(Math.max(0, stored - retained));
          }
        });
        client.subscribe([STORED, RETAINED], { qos: 0 }, (error) => {
          if (error) {
            clearTimeout(timer);
            reject(error);
          }
        });
      });
    } finally {
      await client.endAsync(true);
    }
  }

  async #signal(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill(signal);
    const exited = this.#exited;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const outcome = await Promise.race([exited.then(() => 'exited' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      child.kill('SIGKILL');
      await exited;
      throw new Error(
        `private Mosquitto on ${this.port} did not exit within ${timeoutMs} ms of ${signal}:\n${this.log()}`,
      );
    }
  }

  /** Stops the broker (gracefully, else killed) and removes its directory. */
  async close(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

const STORED = '$SYS/broker/store/messages/count';
let sysClients = 0;
const RETAINED = '$SYS/broker/retained messages/count';

/** Mosquitto processes this test process started and that still run: killed if the process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A port that was free a moment ago (the OS picks it; closed again before Mosquitto binds it). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free TCP port');
  return address.port;
}

/** True when a TCP connection to 127.0.0.1:`port` succeeds. */
function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The uid and gid of a local user, from /etc/passwd; undefined when there is none. */
async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** A file's modification time and inode, or undefined when it does not exist. */
async function fileStamp(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return undefined;
  }
}

/**
 * A private Mosquitto (configured as docs/transports/mqtt.md recommends) for the test file that calls
 * this: started before its tests, stopped and removed after them. The returned target's port is read
 * when used, so it can be handed to a describe block before the broker runs.
 */
export function privateMosquittoForFile(protocolVersion: 4 | 5 = 5): MqttTarget {
  let broker: PrivateMosquitto | undefined;
  beforeAll(async () => {
    broker = await PrivateMosquitto.start();
  });
  afterAll(async () => {
    await broker?.close();
  });
  return {
    host: '127.0.0.1',
    get port(): number {
      return broker?.port ?? 0;
    },
    protocolVersion,
  };
}
