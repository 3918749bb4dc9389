import { describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode } from './errors.js';
import { deferred, waitFor } from '../test/helpers.js';
import { abortable, InDoubtError, LinkState, Reconnector, resendInDoubt } from './link.js';

describe('LinkState', () => {
  it('reports one disconnected per outage, holds waits until up, then reports connected once', async () => {
    const events: string[] = [];
    const link = new LinkState('Test connection', {
      disconnected: (e) => events.push(`disconnected:${e.code}`),
      connected: () => events.push('connected'),
    });
    await expect(link.whenUp(new AbortController().signal)).resolves.toBeUndefined();
    link.down(new ConnectionError('a'));
    link.down(new ConnectionError('b'));
    expect(link.status).toBe('reconnecting');
    let released = false;
    const waiting = link.whenUp(new AbortController().signal).then(() => (released = true));
    await Promise.resolve();
    expect(released).toBe(false);
    link.up();
    await waiting;
    link.up();
    expect(events).toEqual([`disconnected:${ErrorCode.CONNECTION}`, 'connected']);
    expect(link.status).toBe('up');
  });

  it('a wait ends with the signal’s reason on abort, and with ClosedError once closed', async () => {
    const link = new LinkState('Test connection', { disconnected: () => undefined, connected: () => undefined });
    link.down(new ConnectionError('x'));
    const controller = new AbortController();
    const aborted = link.whenUp(controller.signal);
    controller.abort(new Error('timed out'));
    await expect(aborted).rejects.toThrow('timed out');
    const closing = link.whenUp(new AbortController().signal);
    link.close();
    await expect(closing).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    await expect(link.whenUp(new AbortController().signal)).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it('abortable removes its listener and passes results and errors through', async () => {
    const controller = new AbortController();
    await expect(abortable(Promise.resolve(7), controller.signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('no')), controller.signal)).rejects.toThrow('no');
  });
});

describe('Reconnector', () => {
  it('retries with the backoff until an attempt succeeds, reports each attempt, and starts over after reset()', async () => {
    const events: string[] = [];
    let failures = 2;
    const attached: number[] = [];
    const reconnector = new Reconnector<number>(
      { delay: (n) => n },
      {
        connect: () => (failures-- > 0 ? Promise.reject(new Error('refused')) : Promise.resolve(42)),
        attach: (c) => void attached.push(c),
        discard: () => events.push('discard'),
        scheduled: (attempt, delay) => events.push(`scheduled ${attempt} in ${delay}`),
        failed: (_error, attempt) => events.push(`failed ${attempt}`),
      },
    );
    reconnector.schedule();
    await waitFor(() => attached.length === 1, 2_000, 'the third attempt to succeed');
    expect(events).toEqual(['scheduled 1 in 1', 'failed 1', 'scheduled 2 in 2', 'failed 2', 'scheduled 3 in 3']);
    reconnector.reset();
    reconnector.schedule();
    await waitFor(() => attached.length === 2, 2_000, 'the next outage to reconnect');
    expect(events.at(-1)).toBe('scheduled 1 in 1');
  });

  it('after stop(), no attempt starts and a connection that arrives late is discarded', async () => {
    const done = deferred<number>();
    const events: string[] = [];
    let connecting = false;
    const reconnector = new Reconnector<number>(
      { delay: () => 0 },
      {
        connect: () => {
          connecting = true;
          return done.promise;
        },
        attach: () => events.push('attach'),
        discard: () => events.push('discard'),
        scheduled: () => events.push('scheduled'),
        failed: () => events.push('failed'),
      },
    );
    reconnector.schedule();
    await waitFor(() => connecting, 1_000, 'the attempt to start connecting');
    reconnector.stop();
    done.resolve(1);
    await waitFor(() => events.includes('discard'), 1_000, 'the late connection to be discarded');
    reconnector.schedule();
    expect(events).toEqual(['scheduled', 'discard']);
    expect(reconnector.stopped).toBe(true);
  });
});

describe('resendInDoubt', () => {
  it('sends again after an in-doubt failure, stops on any other error, and lets onInDoubt stop it', async () => {
    let calls = 0;
    const signal = new AbortController().signal;
    await resendInDoubt(signal, () => (++calls < 3 ? Promise.reject(new InDoubtError('cut')) : Promise.resolve()));
    expect(calls).toBe(3);
    await expect(resendInDoubt(signal, () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    let seen = 0;
    await expect(
      resendInDoubt(
        signal,
        () => Promise.reject(new InDoubtError('cut', 'ERROR frame')),
        (error) => {
          if (++seen === 2) throw new Error(`gave up: ${(error as InDoubtError).detail}`);
        },
      ),
    ).rejects.toThrow('gave up: ERROR frame');
  });
});

describe('LinkState.upWhenReady', () => {
  it('reports up only once every part is ready, resuming the first one that is not and checking again when it is', async () => {
    const events: string[] = [];
    const link = new LinkState('test link', {
      disconnected: () => events.push('disconnected'),
      connected: () => events.push('connected'),
    });
    link.down(new ConnectionError('cut'));
    let resumed = 0;
    const late = { ready: false, resume: () => (resumed++, Promise.resolve().then(() => void (late.ready = true))) };
    const parts = [{ ready: true, resume: () => undefined }, late];
    const recheck = (): void => link.upWhenReady(parts, recheck);
    recheck();
    expect(link.status).toBe('reconnecting');
    expect(resumed).toBe(1);
    await waitFor(() => link.status === 'up', 2_000, 'the link to be up');
    expect(events).toEqual(['disconnected', 'connected']);
    link.close();
    link.upWhenReady([], recheck);
    expect(link.status).toBe('down');
  });
});
