import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
} from '@opentelemetry/api';
import type { ConsumeMiddleware, PublishMiddleware } from '../context.js';

const TRACER = '@ferry/core';

const getter: TextMapGetter<Readonly<Record<string, string>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * Publish side of W3C trace context: starts a PRODUCER span and injects `traceparent`/`tracestate`
 * into the message headers through the registered OpenTelemetry propagator. A no-op without an SDK.
 */
export const tracePublish: PublishMiddleware = async (ctx, next) => {
  const span = trace.getTracer(TRACER).startSpan(`send ${ctx.destination.name}`, {
    kind: SpanKind.PRODUCER,
    attributes: {
      'messaging.system': ctx.transport,
      'messaging.operation.type': 'send',
      'messaging.destination.name': ctx.destination.name,
      'messaging.message.id': ctx.message.id,
    },
  });
  const active = trace.setSpan(context.active(), span);
  propagation.inject(active, ctx.headers);
  try {
    await context.with(active, next);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
};

/**
 * Consume side: extracts the publisher's trace context from the headers and runs the rest of the
 * pipeline and the handler inside a CONSUMER span that is its child.
 */
export const traceConsume: ConsumeMiddleware = async (ctx, next) => {
  const parent: Context = propagation.extract(ROOT_CONTEXT, ctx.message.headers, getter);
  const span = trace.getTracer(TRACER).startSpan(
    `process ${ctx.subscription.source.name}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': ctx.subscription.transport,
        'messaging.operation.type': 'process',
        'messaging.destination.name': ctx.message.destination.name,
        'messaging.message.id': ctx.message.id,
        ...(ctx.subscription.group === undefined ? {} : { 'messaging.consumer.group.name': ctx.subscription.group }),
      },
    },
    parent,
  );
  try {
    await context.with(trace.setSpan(parent, span), next);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
};
