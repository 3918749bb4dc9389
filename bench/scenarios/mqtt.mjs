// MQTT on Mosquitto: Ferry (@ferry/mqtt) against mqtt.js used directly, in the same run, on the same broker.
//
// Both sides do the same work (see bench/lib/ferry.mjs and raw-common.mjs for the drivers): 1 KiB JSON
// messages published at QoS 1, publish lanes that each await the PUBACK before publishing the next, and a
// consumer that decodes each message and acknowledges it (PUBACK) after the handler. The raw side mirrors
// how Ferry consumes a queue on Mosquitto:
// - MQTT 5 on both connections; sockets built by a custom stream builder with TCP_NODELAY (mqtt.js has no
//   option for it), as Ferry does.
// - publisher: clean start, session expiry 0, `publishAsync('queue.<q>', JSON.stringify(payload), { qos: 1 })`.
// - consumer: a persistent session (clean start off, session expiry 300 s) subscribed at QoS 1 to the shared
//   subscription `$share/<q>/queue.<q>`, the filter Ferry uses for `queue(q)`, with the same Receive Maximum
//   Ferry asks for (max(2 × concurrency, concurrency + 10)). The 'message' listener JSON.parse's the payload
//   and runs the handler; mqtt.js writes the PUBACK after the listener returned (its default handleMessage),
//   so the ack follows the handler. At the end the consumer disconnects with session expiry 0, ending its
//   session.
// The broker is a private Mosquitto this module starts (the machine's binary, a free loopback port) with
// `max_queued_messages 0` and `set_tcp_nodelay true`, as docs/transports/mqtt.md asks for Ferry: the machine's
// Mosquitto keeps the defaults, which silently dropped messages of the raw c=1 runs (a consumer 1000 behind)
// and put 40 ms Nagle stalls into both subjects' tails. FERRY_BENCH_MQTT_URL picks another broker instead.
// Ferry ignores `durable` on MQTT (a queue is a QoS 1 shared subscription on a persistent session either
// way), so there is one end-to-end scenario per concurrency instead of a transient and a persistent one.
// Ferry runs with a stable `mqtt.instanceId` (unique per bench run) and `handOffOnClose: true`, so its queue
// sessions end on close; afterwards the bench ends every persistent session Ferry created (queue and
// dead-letter reservations, listed by @ferry/mqtt's `persistentSessions()`) with a clean start, so runs do not
// leave sessions behind on the broker.
import { spawn } from 'node:child_process';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { persistentSessions } from '@ferry/mqtt';
import { MqttClient } from 'mqtt';
import { ferryLatency, ferryThroughput } from '../lib/ferry.mjs';
import { kibPayload, uniqueName, within } from '../lib/stats.mjs';
import { compare, noDelaySocket, packageVersion, rawLatency, rawThroughput } from './raw-common.mjs';

export const name = 'mqtt';

const SECTION = 'mqtt';
const RAW = 'mqtt.js';
const SCENARIOS = 3;

export function steps(ctx) {
  return SCENARIOS * (ctx.warmup + ctx.reps);
}

/** The Receive Maximum Ferry's consumer asks for (packages/mqtt/src/options.ts, receiveWindow). */
function receiveWindow(concurrency) {
  return Math.min(65_535, Math.max(concurrency * 2, concurrency + 10));
}

/** An mqtt.js client over a TCP_NODELAY socket, connected (CONNACK received). */
async function mqttClient(url, options) {
  const { hostname, port } = new URL(url);
  const client = new MqttClient(() => noDelaySocket(hostname, Number(port || 1883)), {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
  try {
    await within(
      new Promise((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
        client.once('close', () => reject(new Error('bench: MQTT connection closed before CONNACK')));
      }),
      10_000,
      'an MQTT CONNECT',
    );
  } catch (error) {
    client.end(true);
    throw error;
  }
  client.on('error', () => undefined);
  return client;
}

/** Disconnects `client`; `endSession` asks the broker (MQTT 5) to drop the session with the DISCONNECT. */
async function endClient(client, endSession = false) {
  await within(
    client.endAsync(false, endSession ? { reasonCode: 0, properties: { sessionExpiryInterval: 0 } } : {}),
    5_000,
    'an MQTT DISCONNECT',
  ).catch(() => client.end(true));
}

/** The raw mqtt.js client: the consumer first, then the publisher; returns `{ publish, close }`. */
async function openRaw(url, { concurrency }, onMessage) {
  const queue = uniqueName('bench-raw');
  const topic = `queue.${queue}`;
  const payload = kibPayload();
  const consumer = await mqttClient(url, {
    clientId: `${queue}-consumer`,
    clean: false,
    properties: { sessionExpiryInterval: 300, receiveMaximum: receiveWindow(concurrency) },
  });
  let publisher;
  try {
    consumer.on('message', (_topic, body) => {
      JSON.parse(body.toString());
      onMessage();
    });
    await consumer.subscribeAsync(`$share/${queue}/${topic}`, { qos: 1 });
    publisher = await mqttClient(url, {
      clientId: `${queue}-publisher`,
      clean: true,
      properties: { sessionExpiryInterval: 0 },
    });
    const publish = () => publisher.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
    const close = async () => {
      await endClient(publisher);
      await endClient(consumer, true);
    };
    return { publish, close };
  } catch (error) {
    if (publisher) await endClient(publisher);
    await endClient(consumer, true);
    throw error;
  }
}

const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

/** A free TCP port on 127.0.0.1. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
async function accepting(port, child, log) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`bench: private Mosquitto exited while starting: ${log.join(' ')}`);
    const ok = await new Promise((resolve) => {
      const probe = netConnect({ host: '127.0.0.1', port });
      const done = (result) => {
        probe.destroy();
        resolve(result);
      };
      probe.once('connect', () => done(true));
      probe.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`bench: private Mosquitto did not listen on ${port} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts a private Mosquitto (this machine's binary) on a free loopback port, configured as
 * docs/transports/mqtt.md asks for Ferry: `max_queued_messages 0` (the default 1000 silently drops QoS 1
 * messages once a consumer is that far behind, which publish lanes at full speed reach) and
 * `set_tcp_nodelay true` (the default leaves Nagle's algorithm on the broker's sockets: 40 ms stalls).
 * Returns its URL and `stop()` (SIGTERM to its PID, then its directory is removed).
 */
async function privateMosquitto() {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'max_queued_messages 0',
    'max_inflight_messages 1000',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ];
  if (userInfo().uid === 0) {
    // Started as root, Mosquitto drops to the user `mosquitto`, which must own its persistence directory.
    const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
    const entry = passwd.split('\n').find((line) => line.startsWith('mosquitto:'));
    if (entry === undefined) lines.push('user root');
    else {
      const [, , uid, gid] = entry.split(':');
      await chown(dir, Number(uid), Number(gid));
    }
  }
  const config = join(dir, 'mosquitto.conf');
  await writeFile(config, `${lines.join('\n')}\n`);
  const child = spawn(MOSQUITTO_BIN, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  child.stderr.on('data', (chunk) => log.push(...chunk.toString().split('\n').filter(Boolean).slice(-20)));
  const exited = new Promise((resolve) => child.once('exit', resolve).once('error', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await within(exited, 10_000, 'the private Mosquitto to exit').catch(() => child.kill('SIGKILL'));
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await accepting(port, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `mqtt://127.0.0.1:${port}`, port, stop };
}

/** Ends the persistent sessions Ferry created for `instanceId` (clean start, session expiry 0). */
async function endFerrySessions(url, instanceId, ended) {
  for (const clientId of persistentSessions()) {
    if (!clientId.includes(instanceId) || ended.has(clientId)) continue;
    const client = await mqttClient(url, { clientId, clean: true, properties: { sessionExpiryInterval: 0 } });
    await endClient(client, true);
    ended.add(clientId);
  }
}

export async function run(ctx) {
  // The machine's Mosquitto runs with its defaults (max_queued_messages 1000, set_tcp_nodelay false), which
  // silently dropped messages of the raw c=1 runs and puts 40 ms Nagle stalls into both subjects' tails. So,
  // unless FERRY_BENCH_MQTT_URL names a broker, this module starts its own, configured as Ferry's docs ask.
  let broker;
  if (process.env.FERRY_BENCH_MQTT_URL === undefined) {
    try {
      broker = await privateMosquitto();
      ctx.log(
        `mqtt: a private Mosquitto (max_queued_messages 0, max_inflight_messages 1000, set_tcp_nodelay true) on port ${broker.port}`,
      );
    } catch (error) {
      ctx.log(`mqtt: no private Mosquitto (${error.message}); using ${ctx.urls.mqtt} as configured`);
    }
  }
  const url = broker?.url ?? ctx.urls.mqtt;
  const instanceId = `bench-${process.pid}-${Date.now().toString(36)}`;
  const options = { mqtt: { instanceId, handOffOnClose: true } };
  const ended = new Set();
  ctx.section(SECTION, {
    title: `MQTT 5 on Mosquitto: Ferry vs mqtt.js ${packageVersion('mqtt')}`,
    description:
      '1 KiB JSON messages end to end at QoS 1 (publish → PUBACK; consume → JSON.parse → handler → PUBACK), ' +
      'both subjects in the same run, interleaved per repetition. msg/s runs from the first publish to the ' +
      'last handler; round trip is one message at a time, publish until PUBACK and handler both happened.',
    goals: true,
    notes: [
      broker
        ? 'Broker: a private Mosquitto started by this module (the machine’s binary, on a free loopback port) with ' +
          '`max_queued_messages 0`, `max_inflight_messages 1000` and `set_tcp_nodelay true`, as ' +
          'docs/transports/mqtt.md asks for Ferry: with the defaults (1000, 20, false) Mosquitto silently drops ' +
          'QoS 1 messages for a consumer 1000 behind (publish lanes at full speed get there; the raw c=1 runs hung ' +
          'on it), announces a Receive Maximum of 20 (Ferry then keeps at most 20 publishes unacknowledged, as ' +
          'MQTT 5 requires; mqtt.js 5.16 ignores it and sends all 100) and Nagle on its sockets adds 40 ms ' +
          'stalls. Set FERRY_BENCH_MQTT_URL to use another broker instead.'
        : `Broker: ${ctx.urls.mqtt} as configured; it needs \`max_queued_messages 0\` and \`set_tcp_nodelay true\` ` +
          '(see docs/transports/mqtt.md), else runs may hang on silently dropped messages.',
      'mqtt.js side, mirroring how Ferry consumes a queue: MQTT 5, sockets from a custom stream builder with ' +
        'TCP_NODELAY; publisher with a clean session, `publishAsync("queue.<q>", JSON.stringify(payload), ' +
        '{ qos: 1 })` per message, each publish lane awaiting its PUBACK; consumer on a persistent session ' +
        '(clean start off, expiry 300 s, ended with expiry 0 on disconnect) subscribed at QoS 1 to the shared ' +
        'subscription `$share/<q>/queue.<q>`, with Receive Maximum = max(2 × c, c + 10) as Ferry sets it; its ' +
        'message listener JSON.parse-s the payload and runs the handler, and mqtt.js sends the PUBACK after ' +
        'the listener returns.',
      'c=N: N publish lanes and Ferry `concurrency` = N. Ferry ignores `durable` on MQTT (a queue is a QoS 1 ' +
        'shared subscription on a persistent session either way), so there is one end-to-end scenario per ' +
        'concurrency rather than a transient and a persistent one.',
      'Ferry runs with a stable `mqtt.instanceId` (one per bench run) and `handOffOnClose: true`; after each ' +
        'Ferry run the bench ends every persistent session Ferry created (queue and dead-letter sessions, from ' +
        '`persistentSessions()`) with a clean start.',
      'Ferry also sends its CloudEvents attributes as MQTT 5 user properties and a content type on every ' +
        'publish, and reads the "no matching subscribers" reason code off each PUBACK; the mqtt.js side sends ' +
        'only the payload.',
    ],
  });
  const e2e = [
    { scenario: 'e2e QoS 1, c=100', concurrency: 100, n: ctx.scale(10_000, 1_000) },
    { scenario: 'e2e QoS 1, c=1', concurrency: 1, n: ctx.scale(3_000, 300) },
  ];
  try {
    for (const { scenario, concurrency, n } of e2e) {
      await compare(ctx, {
        section: SECTION,
        scenario,
        rawName: RAW,
        ferry: async () => {
          try {
            const result = await ferryThroughput({
              url,
              options,
              n,
              window: concurrency,
              concurrency,
              timeoutMs: 60_000,
            });
            return result.metrics;
          } finally {
            await endFerrySessions(url, instanceId, ended);
          }
        },
        raw: () =>
          rawThroughput({
            what: RAW,
            n,
            lanes: concurrency,
            open: (onMessage) => openRaw(url, { concurrency }, onMessage),
          }),
      });
    }
    const n = ctx.scale(2_000, 200);
    await compare(ctx, {
      section: SECTION,
      scenario: 'round trip',
      rawName: RAW,
      ferry: async () => {
        try {
          return (await ferryLatency({ url, options, n })).metrics;
        } finally {
          await endFerrySessions(url, instanceId, ended);
        }
      },
      raw: () => rawLatency({ what: RAW, n, open: (onMessage) => openRaw(url, { concurrency: 1 }, onMessage) }),
    });
  } finally {
    try {
      await endFerrySessions(url, instanceId, ended);
    } finally {
      await broker?.stop();
    }
  }
}
