/**
 * What the smoke tests need around the example: the brokers on loopback (the ones `npm test` starts),
 * running the real command line, and removing what the tests left on the brokers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { uniqueName, waitFor } from '@ferry/conformance';
// The package as connect() loads it: the registry of the sessions this process made.
import { persistentSessions } from '@ferry/mqtt';

export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const MQTT_URL = 'mqtt://127.0.0.1:1883'; // Mosquitto, MQTT 5
export const STOMP_URL = 'stomp://guest:guest@127.0.0.1:61613';

/** Every transport, each with a URL maker (a memory hub of its own per test: nothing shared by accident). */
export const TRANSPORTS = [
  { name: 'memory', url: () => `memory://${uniqueName('hub')}` },
  { name: 'amqp', url: () => AMQP_URL },
  { name: 'mqtt', url: () => MQTT_URL },
  { name: 'stomp', url: () => STOMP_URL },
] as const;

export type TransportName = (typeof TRANSPORTS)[number]['name'];

/** Deletes queues on RabbitMQ (AMQP and STOMP share it); a missing queue is fine. */
export async function deleteRabbitQueues(names: Iterable<string>): Promise<void> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Ends the persistent MQTT sessions this process's brokers made, if any is left: a clean start with each client id. */
export async function removeMqttSessions(): Promise<void> {
  for (const clientId of persistentSessions()) {
    const client = await mqtt
      .connectAsync({
        host: '127.0.0.1',
        port: 1883,
        protocolVersion: 5,
        clientId,
        clean: true,
        reconnectPeriod: 0,
        properties: { sessionExpiryInterval: 0 },
      })
      .catch(() => undefined);
    await client?.endAsync().catch(() => undefined);
  }
}

/** A command of the example, running as a child process, its output collected. */
export class Command {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | NodeJS.Signals>;

  constructor(script: string, args: readonly string[]) {
    this.child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, FERRY_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  }

  /** Lines printed so far. */
  get lines(): string[] {
    return this.stdout.split('\n').filter((line) => line !== '');
  }

  /** Waits (bounded) until stdout has a line containing `text`. */
  async waitForLine(text: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      () => this.stdout.includes(text),
      timeoutMs,
      () =>
        `"${text}" in the output of ${this.child.spawnargs.slice(1).join(' ')}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
    );
  }

  /** Waits (bounded) for the exit; returns the exit code, or the signal that ended it. */
  async exit(timeoutMs = 15_000): Promise<number | NodeJS.Signals> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(
          new Error(`${this.child.spawnargs.slice(1).join(' ')} did not exit within ${timeoutMs} ms\n${this.stderr}`),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The compiled entry point `dist/<name>.js` of this example; fails with what to run when it was not built. */
export function script(name: string): string {
  const path = fileURLToPath(new URL(`../dist/${name}.js`, import.meta.url));
  if (!existsSync(path)) throw new Error(`${path} is missing: build first (npx tsc -b examples/hello-world)`);
  return path;
}
