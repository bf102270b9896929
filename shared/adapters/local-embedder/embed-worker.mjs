// Worker thread of the local embedder's pool (embed-pool.ts). Plain JavaScript so it starts under any
// parent (tsx, vitest, plain node); it embeds the texts it is sent with the same code as the main thread.
import { parentPort, workerData } from 'node:worker_threads';

async function load() {
  // Module hooks of the parent thread (tsx, vitest) do not reach a worker: register tsx here.
  const tsx = await import('tsx/esm/api').catch(() => undefined);
  tsx?.register();
  return import('./local-embedder.ts');
}

const { createLocalEmbedder } = await load();
const embedder = createLocalEmbedder({ ...workerData.options, workers: 0 });
await embedder.warm();
parentPort.postMessage({ ready: true });

parentPort.on('message', async ({ id, texts }) => {
  try {
    const vectors = await embedder.embed(texts);
    const out = new Float64Array(texts.length * embedder.dimension);
    vectors.forEach((v, i) => out.set(v, i * embedder.dimension));
    parentPort.postMessage({ id, vectors: out }, [out.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
