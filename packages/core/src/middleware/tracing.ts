import {
  type Context,
  context,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import type { ConsumeContext, ConsumeMiddleware, PublishContext, PublishMiddleware } from '../context.js';

const TRACER = '@ferry/core';

const getter: TextMapGetter<Readonly<Record<string, string>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * The tracer of the registered OpenTelemetry SDK, or `undefined` when none is registered: then no span
 * is started at all, which keeps tracing free for applications that do not trace (the API's no-op
 * tracer still allocated a span, its attributes and a context per message).
 */
function sdkTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider ? provider.getDelegateTracer(TRACER) : provider.getTracer(TRACER);
}

/**
 * Publish side of W3C trace context: starts a PRODUCER span and injects `traceparent`/`tracestate`
 * into the message headers through the registered OpenTelemetry propagator. A no-op without an SDK.
 */
export const tracePublish: PublishMiddleware = (ctx, next) => {
  const tracer = sdkTracer();
  if (tracer === undefined) {
    // No SDK: nothing to record, but a registered propagator may still carry the active context.
    propagation.inject(context.active(), ctx.headers);
    return next();
  }
  return publishSpan(tracer, ctx, next);
};

async function publishSpan(tracer: Tracer, ctx: PublishContext, next: () => Promise<void>): Promise<void> {
  const span = tracer.startSpan(`send ${ctx.destination.name}`, {
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
}

/**
 * Consume side: extracts the publisher's trace context from the headers and runs the rest of the
 * pipeline and the handler inside a CONSUMER span that is its child.
 */
export const traceConsume: ConsumeMiddleware = (ctx, next) => {
  const parent: Context = propagation.extract(ROOT_CONTEXT, ctx.message.headers, getter);
  const tracer = sdkTracer();
  if (tracer === undefined) return parent === ROOT_CONTEXT ? next() : context.with(parent, next);
  return consumeSpan(tracer, parent, ctx, next);
};

async function consumeSpan(
  tracer: Tracer,
  parent: Context,
  ctx: ConsumeContext,
  next: () => Promise<void>,
): Promise<void> {
  const span = tracer.startSpan(
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
}
