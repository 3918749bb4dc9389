// A module resolve hook for the cache scenario: BentoCache's Redis driver (and @boringnode/bus) import
// `ioredis`, which this install keeps only under bench/ (ioredis 6: BentoCache's peer range is ^5.3.2, so
// npm did not hoist it). Imports of `ioredis` from those two packages resolve as if made from bench/.
const bench = new URL('../package.json', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === 'ioredis' && /\/node_modules\/(bentocache|@boringnode)\//.test(context.parentURL ?? '')) {
    return next(specifier, { ...context, parentURL: bench });
  }
  return next(specifier, context);
}
