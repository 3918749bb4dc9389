/** Encoded size of a message: body plus header names and values, UTF-8 bytes. */
export function envelopeSize(body: Uint8Array, ...maps: ReadonlyArray<object>): number {
  let size = body.byteLength;
  for (const map of maps) {
    for (const [name, value] of Object.entries(map)) {
      if (typeof value === 'string') size += Buffer.byteLength(name) + Buffer.byteLength(value);
    }
  }
  return size;
}

/**
 * True when a message may exceed `limit`: a cheap upper bound first (a UTF-16 unit is at most 3 UTF-8
 * bytes), the exact count only when the bound is over the limit.
 */
export function exceedsSize(limit: number, body: Uint8Array, ...maps: ReadonlyArray<object>): number | undefined {
  let bound = body.byteLength;
  for (const map of maps) {
    for (const name in map) {
      const value: unknown = (map as Record<string, unknown>)[name];
      if (typeof value === 'string') bound += 3 * (name.length + value.length);
    }
  }
  if (bound <= limit) return undefined;
  const size = envelopeSize(body, ...maps);
  return size > limit ? size : undefined;
}
