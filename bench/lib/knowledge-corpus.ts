/**
 * The knowledge benchmark's corpus, the same on every run: seeded text in topics (words a PDF's
 * pages and a query share), and vectors shaped like a text embedding model's.
 *
 * Why not the demo model's vectors: they hash words into buckets (feature hashing), so two chunks
 * are close only as far as they share words, and 250-word chunks of one vocabulary are all about as
 * close to each other as to anything. A set like that has no neighbourhoods for an approximate
 * index to find (its local intrinsic dimension is several times a text model's), and recall on it
 * measures the data, not the index. The recall set here is a mixture the way text embeddings are:
 * a shared direction (every embedding model's vectors lean one way), topics, subtopics within them,
 * a few directions of variation inside each subtopic, and noise. `intrinsicDimension` estimates how
 * hard the set is, and the benchmark prints it beside the recall so the two are read together.
 */

/** Mulberry32: a small seeded generator, the same sequence on every platform. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A standard normal draw (Box–Muller). */
const normal = (random: () => number) => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());

const unit = (vector: number[]): number[] => {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum) || 1;
  return vector.map((value) => value / norm);
};

export const dot = (a: readonly number[], b: readonly number[]): number => {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += a[i] * b[i];
  return sum;
};

const SYLLABLES = ['ka', 'lo', 'mi', 'ren', 'tor', 'sa', 'vel', 'qui', 'dan', 'mor', 'pel', 'sti', 'gra', 'nu', 'bex', 'ol', 'fi', 'zar'];
/** English stop words: the full-text configuration drops them. */
const FUNCTION_WORDS = ['the', 'of', 'and', 'to', 'a', 'in', 'is', 'for', 'on', 'with', 'as', 'by', 'that', 'this', 'are', 'be'];
/** Common English words, in every topic's text: they tokenize and stem as a manual's prose does. */
const ENGLISH = (
  'time year people way day thing life world school state family group country problem hand part place case week company ' +
  'system program question work government number night point home water room area money story fact month lot right study ' +
  'book job word business issue side kind head house service friend power hour game line end member law car city community ' +
  'name team minute idea body information back parent face level office door health person art history party result change ' +
  'morning reason research moment air teacher force education make take use find give tell call try need feel become leave ' +
  'put mean keep let begin seem help show hear play run move live believe hold bring happen write provide sit stand lose pay ' +
  'meet include continue set learn lead understand watch follow stop create speak read allow add spend grow open walk win ' +
  'offer remember consider appear buy wait serve send expect build stay fall cut reach remain suggest raise pass sell require ' +
  'report decide pull good new first last long great little own other old big high different small large next early young ' +
  'important few public bad same able order price customer product support account user data file page table value report ' +
  'process policy request access update version device network server message error setting option feature control plan'
).split(' ');

/** A distinct made-up word for every number: its base-18 digits as syllables. */
function wordOf(index: number): string {
  let word = '';
  let rest = index + SYLLABLES.length * SYLLABLES.length;
  while (rest > 0) {
    word += SYLLABLES[rest % SYLLABLES.length];
    rest = Math.floor(rest / SYLLABLES.length);
  }
  return word;
}

export interface CorpusShape {
  /** Dimensions of every vector (the demo model's default is 256). */
  dimensions: number;
  topics: number;
  subtopicsPerTopic: number;
  seed: number;
}

export const DEFAULT_SHAPE: CorpusShape = { dimensions: 256, topics: 400, subtopicsPerTopic: 16, seed: 76 };

/** Where one chunk sits in the corpus: its topic and subtopic. */
export interface Place {
  topic: number;
  subtopic: number;
}

/**
 * The corpus: words (a common vocabulary drawn by Zipf's law, and each topic's own words) and the
 * vector space (a shared direction, topic and subtopic centres, each subtopic's own directions).
 */
export class KnowledgeCorpus {
  private readonly common: string[];
  private readonly topicWords: string[][];
  private readonly shared: number[];
  private readonly topicCentres: number[][];
  private readonly subtopicCentres: number[][][];
  /** Each subtopic's directions, made on first use from a seed of their own (so the order of use changes nothing). */
  private readonly subtopicAxes = new Map<number, number[][]>();

  /** How strongly each part pulls a vector: shared direction, topic, subtopic, own axes, noise. */
  static readonly WEIGHTS = { shared: 0.8, topic: 1, subtopic: 0.7, axes: 0.6, noise: 0.4 } as const;
  /** Directions of variation inside a subtopic. */
  static readonly AXES = 16;
  /** More noise in a query than in a chunk: a question lies farther from its passage than two passages of one subtopic. */
  static readonly QUERY_NOISE = 0.5;

  constructor(readonly shape: CorpusShape = DEFAULT_SHAPE) {
    const random = seeded(shape.seed);
    const d = shape.dimensions;
    const gaussian = () => Array.from({ length: d }, () => normal(random));
    this.common = Array.from({ length: 3_000 }, (_, i) => wordOf(i));
    this.topicWords = Array.from({ length: shape.topics }, (_, t) => Array.from({ length: 40 }, (_, k) => wordOf(10_000 + t * 40 + k)));
    this.shared = unit(gaussian());
    this.topicCentres = Array.from({ length: shape.topics }, () => unit(gaussian()));
    this.subtopicCentres = this.topicCentres.map(() => Array.from({ length: shape.subtopicsPerTopic }, () => unit(gaussian())));
  }

  private axesOf(place: Place): number[][] {
    const key = place.topic * this.shape.subtopicsPerTopic + place.subtopic;
    let axes = this.subtopicAxes.get(key);
    if (!axes) {
      const random = seeded(this.shape.seed * 1_000_003 + key);
      const length = 1 / Math.sqrt(KnowledgeCorpus.AXES);
      axes = Array.from({ length: KnowledgeCorpus.AXES }, () =>
        unit(Array.from({ length: this.shape.dimensions }, () => normal(random))).map((value) => value * length),
      );
      this.subtopicAxes.set(key, axes);
    }
    return axes;
  }

  /** A place drawn at random. */
  place(random: () => number): Place {
    return { topic: Math.floor(random() * this.shape.topics), subtopic: Math.floor(random() * this.shape.subtopicsPerTopic) };
  }

  /**
   * `count` words of text at a place: 30 % the topic's own words (its jargon, made up), 20 % stop
   * words, 40 % common English words and 10 % rarer made-up ones, both by Zipf's law.
   */
  words(place: Place, count: number, random: () => number): string[] {
    const own = this.topicWords[place.topic];
    const zipf = (list: readonly string[]) => list[Math.min(list.length - 1, Math.floor(Math.exp(random() * Math.log(list.length))) - 1)];
    const out: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const roll = random();
      if (roll < 0.3) out.push(own[(place.subtopic * 3 + Math.floor(random() * 16)) % own.length]);
      else if (roll < 0.5) out.push(FUNCTION_WORDS[Math.floor(random() * FUNCTION_WORDS.length)]);
      else if (roll < 0.9) out.push(zipf(ENGLISH));
      else out.push(zipf(this.common));
    }
    return out;
  }

  /** A query's vector at a place: a chunk's, with more noise. */
  query(place: Place, random: () => number): number[] {
    return this.vector(place, random, KnowledgeCorpus.QUERY_NOISE);
  }

  /** A vector at a place: the shared direction, the topic and subtopic centres, a point on the subtopic's axes, and noise. */
  vector(place: Place, random: () => number, extraNoise = 0): number[] {
    const w = KnowledgeCorpus.WEIGHTS;
    const topic = this.topicCentres[place.topic];
    const subtopic = this.subtopicCentres[place.topic][place.subtopic];
    const axes = this.axesOf(place);
    const along = axes.map(() => normal(random));
    const noise = (w.noise + extraNoise) / Math.sqrt(this.shape.dimensions);
    return unit(
      topic.map((value, i) => {
        let sum = w.shared * this.shared[i] + w.topic * value + w.subtopic * subtopic[i] + noise * normal(random);
        for (let a = 0; a < axes.length; a += 1) sum += w.axes * along[a] * axes[a][i];
        return sum;
      }),
    );
  }
}

/**
 * The local intrinsic dimension of a set at some queries, by the maximum-likelihood estimator
 * (Levina and Bickel) over each query's k nearest distances, averaged: about 10 – 20 for text
 * embeddings, the higher the harder for any approximate index. `nearest` holds, per query, its
 * ascending Euclidean distances (not counting itself).
 */
export function intrinsicDimension(nearest: readonly (readonly number[])[]): number {
  const estimates = nearest.flatMap((distances) => {
    const k = distances.length;
    const far = distances[k - 1];
    if (k < 2 || !(far > 0)) return [];
    let sum = 0;
    for (let i = 0; i < k - 1; i += 1) sum += Math.log(far / Math.max(distances[i], 1e-12));
    return sum > 0 ? [(k - 1) / sum] : [];
  });
  return estimates.length ? estimates.reduce((a, b) => a + b, 0) / estimates.length : Number.NaN;
}
