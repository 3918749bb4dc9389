import { afterEach, describe, expect, it, vi } from 'vitest';
import { uniqueName } from '../test/helpers.js';
import { connect } from './connect.js';
import { queue } from './destination.js';
import { ErrorCode, FerryError } from './errors.js';
import type { LogFields, Logger } from './logger.js';
import { MEMORY_CAPABILITIES } from './memory/transport.js';
import type { TransportFactory } from './transport.js';

const PASSWORD = 'Sup3r-S3cret!pw';
const URL_WITH_SECRET = `amqp://alice:${encodeURIComponent(PASSWORD)}@127.0.0.1:1/vhost?token=tok-${PASSWORD}`;

function recordingLogger(lines: string[]): Logger {
  const write = (fields: LogFields, message: string) => void lines.push(`${message} ${JSON.stringify(fields)}`);
  return { debug: write, info: write, warn: write, error: write };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('connect()', () => {
  it('uses memory:// by default and FERRY_URL when set', async () => {
    vi.stubEnv('FERRY_URL', '');
    const broker = await connect();
    expect(broker.transport).toBe('memory');
    expect(broker.health().url).toBe('memory://');
    await broker.close();
    const hub = uniqueName('env');
    vi.stubEnv('FERRY_URL', `memory://${hub}`);
    const fromEnv = await connect();
    expect(fromEnv.health().url).toBe(`memory://${hub}`);
    expect(fromEnv.capabilities).toEqual(MEMORY_CAPABILITIES);
    await fromEnv.close();
  });

  it('refuses an invalid URL and an unknown scheme with FERRY_INVALID_URL', async () => {
    await expect(connect('not a url')).rejects.toMatchObject({
      name: 'ConfigurationError',
      code: ErrorCode.INVALID_URL,
    });
    await expect(connect('kafka://localhost:9092')).rejects.toMatchObject({
      code: ErrorCode.INVALID_URL,
      message: expect.stringContaining('amqp:') as string,
    });
  });

  it('names the package to install when a transport is missing', async () => {
    const error = (await connect('nats://127.0.0.1:4222', {
      transports: { nats: '@ferry/nats-not-installed' },
    }).catch((e: unknown) => e)) as FerryError;
    expect(error).toBeInstanceOf(FerryError);
    expect(error.code).toBe(ErrorCode.TRANSPORT_MISSING);
    expect(error.message).toContain('npm install @ferry/nats-not-installed');
  });

  it('loads a transport registered by factory', async () => {
    const factory: TransportFactory = async (context) => {
      const { MemoryTransport } = await import('./memory/transport.js');
      const { memoryHub } = await import('./memory/hub.js');
      return new MemoryTransport(memoryHub(context.url.hostname), 10);
    };
    const broker = await connect(`custom://${uniqueName('hub')}`, { transports: { custom: factory } });
    expect(broker.transport).toBe('memory');
    await broker.producer().publish(queue('q'), { type: 'x', data: 1 });
    await broker.close();
  });

  it('never lets a password or token escape: errors, causes, stacks, logs, events, health', async () => {
    const lines: string[] = [];
    const failing: TransportFactory = () => {
      const cause = new Error(`connect ECONNREFUSED while dialing ${URL_WITH_SECRET} (password ${PASSWORD})`);
      return Promise.reject(cause);
    };
    const error = (await connect(URL_WITH_SECRET, {
      transports: { amqp: failing },
      logger: recordingLogger(lines),
    }).catch((e: unknown) => e)) as FerryError;
    expect(error.code).toBe(ErrorCode.CONNECTION);
    const dump = [
      error.message,
      error.stack,
      String((error.cause as Error).message),
      String((error.cause as Error).stack),
    ].join('\n');
    expect(dump).toContain('ECONNREFUSED');
    expect(dump).toContain('alice');
    expect(dump).not.toContain(PASSWORD);
    expect(dump).not.toContain(encodeURIComponent(PASSWORD));

    // A transport that connects, then reports a failure carrying the URL.
    let emitError: ((e: FerryError) => void) | undefined;
    const leaky: TransportFactory = async (context) => {
      const { MemoryTransport } = await import('./memory/transport.js');
      const { memoryHub } = await import('./memory/hub.js');
      const transport = new MemoryTransport(memoryHub(uniqueName('leaky')), 10);
      emitError = (e) => (transport as unknown as { emit(event: string, e: FerryError): void }).emit('disconnected', e);
      expect(context.url.password).toBe(encodeURIComponent(PASSWORD));
      return transport;
    };
    const broker = await connect(URL_WITH_SECRET, { transports: { amqp: leaky }, logger: recordingLogger(lines) });
    const events: FerryError[] = [];
    broker.on('disconnected', (e) => events.push(e));
    emitError!(new FerryError(ErrorCode.CONNECTION, `lost ${URL_WITH_SECRET}`, { cause: new Error(PASSWORD) }));
    const health = broker.health();
    const everything = JSON.stringify({
      health,
      lines,
      events: events.map((e) => [e.message, e.stack, (e.cause as Error).message]),
    });
    expect(health.url).toBe('amqp://alice:***@127.0.0.1:1/vhost?token=***');
    expect(health.lastError?.message).toContain('lost amqp://alice:***@');
    expect(lines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(encodeURIComponent(PASSWORD));
    await broker.close();
  });

  it('checks options before the transport connects, so a bad option leaks no connection', async () => {
    let connected = 0;
    const factory: TransportFactory = () => {
      connected++;
      return Promise.reject(new Error('must not be called'));
    };
    await expect(connect('spy://x', { transports: { spy: factory }, json: { maxDepth: -1 } })).rejects.toMatchObject({
      code: ErrorCode.CONFIGURATION,
    });
    expect(connected).toBe(0);
  });

  it('refuses invalid numeric options with ConfigurationError', async () => {
    await expect(connect('memory://', { maxMessageBytes: 0 })).rejects.toMatchObject({ code: ErrorCode.CONFIGURATION });
    await expect(connect('memory://?maxQueueLength=-1')).rejects.toMatchObject({ code: ErrorCode.CONFIGURATION });
    const broker = await connect(`memory://${uniqueName('h')}`, { publishTimeout: -5 });
    expect(() => broker.producer()).toThrow(expect.objectContaining({ code: ErrorCode.CONFIGURATION }));
    await broker.close();
  });
});
