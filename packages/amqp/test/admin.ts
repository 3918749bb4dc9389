import amqp from 'amqplib';
import { AMQP_URL } from './broker.js';

/** A plain amqplib connection for inspecting and preparing the broker, as another service would; opened again if lost. */
let adminModel: amqp.ChannelModel | undefined;

export async function admin(): Promise<amqp.ChannelModel> {
  if (adminModel === undefined) {
    const model = await amqp.connect(AMQP_URL);
    model.on('error', () => undefined);
    model.on('close', () => {
      if (adminModel === model) adminModel = undefined;
    });
    adminModel = model;
  }
  return adminModel;
}

/** `checkQueue` on a channel of its own (a 404 closes the channel): undefined when the queue does not exist. */
export async function check(name: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
  const channel = await (await admin()).createChannel();
  channel.on('error', () => undefined);
  try {
    const { messageCount, consumerCount } = await channel.checkQueue(name);
    await channel.close();
    return { messageCount, consumerCount };
  } catch {
    return undefined;
  }
}

/** Deletes queues (missing ones are fine) on the admin connection, trying again once if it was just cut. */
export async function deleteQueues(names: Iterable<string>): Promise<void> {
  for (const name of names) {
    // Twice at most: the first try may meet an admin connection that was just cut.
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const channel = await (await admin()).createChannel();
        channel.on('error', () => undefined);
        await channel.deleteQueue(name);
        await channel.close().catch(() => undefined);
        break;
      } catch {
        const stale = adminModel;
        adminModel = undefined;
        await stale?.close().catch(() => undefined);
      }
    }
  }
}

/** Closes the admin connection (after a test file). */
export async function closeAdmin(): Promise<void> {
  const model = adminModel;
  adminModel = undefined;
  await model?.close().catch(() => undefined);
}

/** Messages waiting in a queue, read on a fresh connection (fault tests close every connection). */
export async function queueDepth(name: string): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(name)).messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}
