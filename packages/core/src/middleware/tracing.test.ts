import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../../test/helpers.js';
import { connect } from '../connect.js';
import { queue } from '../destination.js';
import type { Message } from '../message.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';

afterAll(() => {
  propagation.disable();
  context.disable();
});

describe('trace context propagation', () => {
  it('sends no trace header when no OpenTelemetry SDK or propagator is registered', async () => {
    const broker = await connect(`memory://${uniqueName('otel')}`);
    const q = queue(uniqueName('q'));
    const got: Message[] = [];
    await broker.consumer().subscribe(q, (m) => void got.push(m));
    await broker.producer().publish(q, { type: 'x', data: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.headers['traceparent']).toBeUndefined();
    await broker.close();
  });

  it("carries W3C traceparent from the publisher's active span to the handler's active context", async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const broker = await connect(`memory://${uniqueName('otel')}`);
    const q = queue(uniqueName('q'));
    const seen: { header: string | undefined; traceId: string | undefined }[] = [];
    await broker.consumer().subscribe(q, (m) => {
      seen.push({ header: m.headers['traceparent'], traceId: trace.getSpanContext(context.active())?.traceId });
    });
    const parent = trace.setSpanContext(context.active(), {
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
    });
    await context.with(parent, () => broker.producer().publish(q, { type: 'x', data: 1 }));
    await waitFor(() => seen.length === 1);
    expect(seen[0]!.header).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(seen[0]!.traceId).toBe(TRACE_ID);
    await broker.close();
  });
});
