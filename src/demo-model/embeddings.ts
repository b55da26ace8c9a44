import type { Embedder } from './openai-compatible-server';
import { words } from './conversation';

/** Vector size when the client does not ask for `dimensions`. */
export const DEMO_EMBEDDING_DIMENSIONS = 256;

/** 32-bit FNV-1a: fast, dependency-free and stable across runs and platforms. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A deterministic embedding by feature hashing: lowercase words (weight 1) and word bigrams
 * (weight 0.5) are hashed into buckets with a hashed sign, then L2-normalised. Same text gives the
 * same vector; texts sharing words point the same way, which is all semantic search demos need.
 */
export function embedText(text: string, dimensions: number = DEMO_EMBEDDING_DIMENSIONS): number[] {
  const size = Math.max(1, Math.floor(dimensions));
  const vector = new Array<number>(size).fill(0);
  const tokens = words(text);
  const add = (feature: string, weight: number): void => {
    const hash = fnv1a(feature);
    // The sign comes from other bits than the bucket so colliding features tend to cancel out.
    vector[hash % size] += (hash & 0x80000000 ? -1 : 1) * weight;
  };
  tokens.forEach((token, i) => {
    add(token, 1);
    if (i > 0) add(`${tokens[i - 1]} ${token}`, 0.5);
  });
  // Keeps empty text a unit vector, so cosine similarity never divides by zero.
  if (tokens.length === 0) add('\u0000empty', 1);
  const norm = Math.hypot(...vector);
  // Features can cancel out exactly; a zero vector would make cosine similarity NaN downstream.
  if (norm === 0) vector[0] = 1;
  return vector.map((v) => v / (norm || 1));
}

/** The demo model's embedder for the OpenAI-compatible server (honours `dimensions`). */
export const demoEmbedder: Embedder = (texts, _model, options) =>
  texts.map((text) => embedText(text, options?.dimensions ?? DEMO_EMBEDDING_DIMENSIONS));

export { cosineSimilarity } from '../lib/vectors';
