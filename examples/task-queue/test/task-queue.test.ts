/**
 * Smoke test of the task-queue example on every transport, against the real brokers: workers in
 * process and as child processes, fair dispatch, retries and the dead-letter queue, a worker killed
 * mid-task (where the transport redelivers its task to another worker), and graceful shutdown.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connect, memoryHub } from '@ferry/core';
import { uniqueName, waitFor } from '@ferry/conformance';
import {
  runProducer,
  startWorker,
  watchDeadLetters,
  type DeadLetter,
  type WorkerEvent,
  type WorkerOptions,
} from '../src/task-queue.js';
import { Command, deleteRabbitQueues, rabbitQueuesOf, removeMqttSessions, script, TRANSPORTS } from './helpers.js';

/** 20 ms per dot and per first retry delay: the tutorial's timing, fifty times faster. */
const FAST = { dotMs: 20, retryDelayMs: 20, maxAttempts: 3 } as const;
const FAST_ARGS = ['--dot-ms', '20', '--retry-ms', '20'];

describe.each(TRANSPORTS)('task-queue on $name', ({ name, url: urlOf }) => {
  const queues: string[] = [];
  const queueName = () => {
    const queue = uniqueName('tasks');
    queues.push(queue);
    return queue;
  };
  /** Run after each test, last registered first. */
  const cleanups: (() => unknown)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  afterAll(async () => {
    if (name === 'amqp' || name === 'stomp') await deleteRabbitQueues(queues.flatMap(rabbitQueuesOf));
    if (name === 'mqtt') await removeMqttSessions();
  });

  const events: WorkerEvent[] = [];
  afterEach(() => void events.splice(0));
  const doneBy = (task: string) => events.filter((e) => e.kind === 'done' && e.task === task).map((e) => e.worker);

  /** An in-process worker on `queue` that records what it does in `events`. */
  async function worker(url: string, queue: string, workerName: string, options: WorkerOptions = {}) {
    const started = await startWorker(url, workerName, { ...FAST, queue, onEvent: (e) => events.push(e), ...options });
    cleanups.push(() => started.close());
    return started;
  }

  /** An in-process reader of the queue's dead letters. */
  async function deadLetterReader(url: string, queue: string): Promise<DeadLetter[]> {
    const deadLetters: DeadLetter[] = [];
    const watcher = await watchDeadLetters(url, (d) => void deadLetters.push(d), { queue });
    cleanups.push(() => watcher.close());
    return deadLetters;
  }

  it('two workers share the tasks, each done once; a failing task is retried, then dead-lettered', async () => {
    const url = urlOf();
    const queue = queueName();
    // The reader first: on MQTT a queue keeps messages only once subscribed, and that includes tasks.dlq.
    const deadLetters = await deadLetterReader(url, queue);
    await worker(url, queue, 'w1');
    await worker(url, queue, 'w2');

    const tasks = Array.from({ length: 8 }, (_, i) => `task ${i}${'.'.repeat(i % 3)}`);
    const failing = 'this task will fail.';
    await runProducer(url, [...tasks.slice(0, 4), failing, ...tasks.slice(4)], { queue });
    await waitFor(
      () => tasks.every((task) => doneBy(task).length > 0) && deadLetters.length > 0,
      15_000,
      () => `every task done and a dead letter; events: ${JSON.stringify(events)}`,
    );

    for (const task of tasks) expect(doneBy(task), task).toHaveLength(1);
    expect(new Set(tasks.flatMap(doneBy))).toEqual(new Set(['w1', 'w2']));
    const failures = events.filter((e) => e.task === failing && e.kind === 'failed');
    expect(failures.map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(deadLetters).toEqual([{ task: failing, attempts: 3, reason: `cannot do '${failing}'` }]);
  });

  it('fair dispatch: while one worker is busy, the other one gets every new task', async (context) => {
    if (name === 'mqtt') {
      context.skip(
        "Mosquitto deals a shared subscription's messages round-robin to its members, busy or not: no fair dispatch on MQTT (see the README)",
      );
    }
    const url = urlOf();
    const queue = queueName();
    await worker(url, queue, 'w1');
    await worker(url, queue, 'w2');

    const long = `a long task${'.'.repeat(75)}`; // 1.5 s
    await runProducer(url, [long], { queue });
    await waitFor(() => events.some((e) => e.kind === 'received' && e.task === long), 5_000, 'the long task taken');
    const busy = events.find((e) => e.task === long)!.worker;
    const quick = ['quick 1', 'quick 2', 'quick 3', 'quick 4', 'quick 5', 'quick 6'];
    await runProducer(url, quick, { queue });
    await waitFor(() => [long, ...quick].every((task) => doneBy(task).length > 0), 10_000, 'every task done');

    expect(doneBy(long)).toEqual([busy]);
    expect(quick.flatMap(doneBy)).toEqual(quick.map(() => (busy === 'w1' ? 'w2' : 'w1')));
  });

  it('a worker killed mid-task loses nothing: its task goes to another worker', async (context) => {
    const url = urlOf();
    const queue = queueName();
    const probe = await connect(url);
    const failover = probe.capabilities.failoverRedelivery;
    await probe.close();
    expect(failover).toBe(name !== 'mqtt');
    if (!failover) {
      context.skip(
        "capabilities.failoverRedelivery is false: Mosquitto keeps a dead worker's unacknowledged task in that worker's session until a worker with its mqtt.instanceId comes back (eclipse-mosquitto#2662)",
      );
    }

    const slow = `a slow task${'.'.repeat(10)}`; // 1 s on the doomed worker (100 ms per dot)
    let crash: () => void;
    let doomedOutput: () => string;
    if (name === 'memory') {
      // A memory broker lives in this process: the doomed worker's connection to the hub dies instead.
      const hub = memoryHub(new URL(url).host);
      await worker(url, queue, 'doomed', { dotMs: 100, connectOptions: { connectionName: 'doomed' } });
      cleanups.push(() => hub.start('doomed'));
      crash = () => hub.stop('doomed');
      await runProducer(url, [slow], { queue });
      await waitFor(() => events.some((e) => e.worker === 'doomed' && e.kind === 'received'), 5_000, 'doomed at work');
      doomedOutput = () => '';
    } else {
      const doomed = new Command(script('worker'), [
        '--url',
        url,
        '--queue',
        queue,
        '--name',
        'doomed',
        '--dot-ms',
        '100',
      ]);
      cleanups.push(() => doomed.child.kill('SIGKILL'));
      await doomed.waitForLine('waiting for tasks');
      crash = () => doomed.child.kill('SIGKILL');
      await runProducer(url, [slow], { queue });
      await doomed.waitForLine(`received '${slow}'`);
      doomedOutput = () => doomed.stdout;
    }

    await worker(url, queue, 'rescuer');
    crash();
    await waitFor(() => doneBy(slow).includes('rescuer'), 10_000, `the rescuer doing '${slow}'`);
    const rescued = events.find((e) => e.worker === 'rescuer' && e.task === slow)!;
    expect(rescued.redelivered).toBe(true);
    expect(doomedOutput()).not.toContain(`done '${slow}'`);
  });

  it('main.js runs a dead-letter reader, two workers and the producer in one process', async () => {
    const main = new Command(script('main'), ['--url', urlOf(), '--queue', queueName(), ...FAST_ARGS]);
    expect(await main.exit(), main.stderr).toBe(0);
    for (const task of ['First task.', 'Second task..', 'Third task...', 'Fourth task.', 'Fifth task..']) {
      expect(
        main.lines.filter((line) => line.endsWith(`] done '${task}'`)),
        task,
      ).toHaveLength(1);
    }
    expect(main.lines).toContain(
      " [!] Dead letter 'This one will fail.' after 3 attempts: cannot do 'This one will fail.'",
    );
    expect(main.lines.at(-1)).toBe('all 6 tasks done or dead-lettered');
  });

  it.skipIf(name === 'memory')(
    'worker.js, new-task.js and dead-letters.js as processes; SIGTERM lets a worker finish its task',
    async () => {
      const url = urlOf();
      const queue = queueName();
      const common = ['--url', url, '--queue', queue];
      const deadLetters = new Command(script('dead-letters'), [...common, '--count', '1']);
      const workers = ['w1', 'w2'].map((w) => new Command(script('worker'), [...common, '--name', w, ...FAST_ARGS]));
      cleanups.push(() => [deadLetters, ...workers].forEach((c) => c.child.kill('SIGKILL')));
      await deadLetters.waitForLine('Waiting for dead letters');
      for (const w of workers) await w.waitForLine('waiting for tasks');

      const tasks = ['one.', 'two..', 'three', 'four.'];
      const sender = new Command(script('new-task'), [...common, ...tasks, 'five will fail']);
      expect(await sender.exit(), sender.stderr).toBe(0);
      expect(await deadLetters.exit(), deadLetters.stderr).toBe(0);
      expect(deadLetters.lines).toContain(
        " [!] Dead letter 'five will fail' after 3 attempts: cannot do 'five will fail'",
      );
      const doneLines = (task: string) =>
        workers.flatMap((w) => w.lines).filter((line) => line.endsWith(`] done '${task}'`));
      await waitFor(() => tasks.every((task) => doneLines(task).length > 0), 10_000, 'every task done');
      for (const task of tasks) expect(doneLines(task), task).toHaveLength(1);

      // SIGTERM in the middle of a task: the worker finishes it, acknowledges it, and exits with 0.
      const slow = `a slow task${'.'.repeat(40)}`; // 0.8 s
      expect(await new Command(script('new-task'), [...common, slow]).exit()).toBe(0);
      await waitFor(() => workers.some((w) => w.stdout.includes(`received '${slow}'`)), 5_000, 'the slow task taken');
      const busy = workers.find((w) => w.stdout.includes(`received '${slow}'`))!;
      for (const w of workers) w.child.kill('SIGTERM');
      for (const w of workers) expect(await w.exit(), w.stderr).toBe(0);
      const afterSignal = busy.stdout.slice(busy.stdout.indexOf('SIGTERM'));
      expect(afterSignal).toContain(`done '${slow}'`);
      expect(busy.lines.at(-1)).toMatch(/\] stopped$/);
    },
  );
});
