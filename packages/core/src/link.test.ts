import { describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode } from './errors.js';
import { abortable, LinkState } from './link.js';

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
