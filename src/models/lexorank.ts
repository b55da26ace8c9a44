/**
 * Base-62 fractional ranks for ordering canvas blocks.
 *
 * A rank `d1d2…dL` is read as the fraction 0.d1d2…dL in base 62. The alphabet is `0-9A-Za-z` in
 * ASCII order, so plain JS string comparison and PostgreSQL `COLLATE "C"` agree with numeric order.
 * Ranks never end in `'0'`: with trailing zeros `'a'` and `'a0'` would be distinct strings with
 * nothing between them, whereas without them string order is exactly numeric order and any two
 * distinct ranks always have room between them.
 *
 * Length guarantee: a call whose neighbours have length at most `m` returns ranks of length at most
 * `m + ceil(log62(count + 1))` between two neighbours (a single insert adds at most one digit), and
 * {@link OPEN_END_EXTRA_DIGITS} more at an open end. Appends after the last
 * rank (and prepends) grow logarithmically with the number of blocks, but repeated inserts into the
 * same inner gap halve it each time (about one digit per 6 inserts), which is unbounded, so callers check
 * {@link needsRebalance} and rewrite the canvas with {@link evenRanks} long before
 * {@link MAX_RANK_LENGTH} is reached.
 */

/** The digits in ascending order; index = digit value. */
export const RANK_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Hard upper bound on rank length (size the database column for it). */
export const MAX_RANK_LENGTH = 64;

/** Ranks longer than this should be rebalanced: one call adds at most 5 digits (10,000 ranks at an open end), so 64 is never reached. */
export const REBALANCE_THRESHOLD = 48;

/** At an open end a batch may go this many digits past the shortest length that fits (see `spread`). */
export const OPEN_END_EXTRA_DIGITS = 2;

/** Largest `count` accepted by {@link rankBetween}. */
export const MAX_RANKS_PER_CALL = 10_000;

/** Largest `count` accepted by {@link evenRanks} (a whole canvas, so larger than one insert). */
export const MAX_EVEN_RANKS = 1_000_000;

/**
 * Thrown when the requested ranks would exceed {@link MAX_RANK_LENGTH}. Extends RangeError like
 * other argument errors, but is distinct so callers can catch it, rebalance and retry.
 */
export class RankSpaceExhaustedError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'RankSpaceExhaustedError';
  }
}

const BASE = 62n;
const DIGIT_VALUE = new Map<string, number>([...RANK_ALPHABET].map((c, i) => [c, i]));

function assertRank(rank: string, label: string): void {
  if (typeof rank !== 'string' || rank.length === 0 || rank.length > MAX_RANK_LENGTH) {
    throw new RangeError(`${label} must be a rank of 1..${MAX_RANK_LENGTH} characters`);
  }
  for (const c of rank) {
    if (!DIGIT_VALUE.has(c)) throw new RangeError(`${label} contains '${c}', outside the base-62 alphabet`);
  }
  if (rank.endsWith('0')) throw new RangeError(`${label} must not end with '0'`);
}

function assertCount(count: number, max: number, min: number): void {
  if (!Number.isInteger(count) || count < min || count > max) {
    throw new RangeError(`count must be an integer in ${min}..${max}, got ${count}`);
  }
}

function digitAt(rank: string, i: number): bigint {
  return i < rank.length ? BigInt(DIGIT_VALUE.get(rank[i])!) : 0n;
}

/** Writes `value` as exactly `length` base-62 digits, then drops trailing zeros (same fraction). */
function toRank(value: bigint, length: number): string {
  const digits: string[] = new Array<string>(length);
  for (let i = length - 1; i >= 0; i--) {
    digits[i] = RANK_ALPHABET[Number(value % BASE)];
    value /= BASE;
  }
  return digits.join('').replace(/0+$/, '');
}

/**
 * Returns `count` strictly increasing ranks strictly between `prev` and `next`.
 *
 * All ranks come from one digit length L: the smallest L at which the gap holds `count` distinct
 * values, so they stay as short as possible. Between two neighbours they are spread evenly over the
 * gap so that later inserts between any two of them have equal room; at an open end (no `prev` or
 * no `next`) they sit next to the known neighbour, so appends and prepends keep the open end.
 *
 * @param prev - rank just before the new ones, or null for the start of the list
 * @param next - rank just after the new ones, or null for the end of the list
 * @param count - how many ranks to produce (1..{@link MAX_RANKS_PER_CALL})
 * @throws RangeError on a malformed rank, `prev >= next`, or a bad count
 * @throws RankSpaceExhaustedError if the result would exceed {@link MAX_RANK_LENGTH}
 */
export function rankBetween(prev: string | null, next: string | null, count = 1): string[] {
  if (prev !== null) assertRank(prev, 'prev');
  if (next !== null) assertRank(next, 'next');
  if (prev !== null && next !== null && !(prev < next)) {
    throw new RangeError(`prev '${prev}' must sort before next '${next}'`);
  }
  assertCount(count, MAX_RANKS_PER_CALL, 1);
  return spread(prev, next, count);
}

/** The core of {@link rankBetween}, without argument checks. */
function spread(prev: string | null, next: string | null, count: number): string[] {
  // At L digits the candidates are integers k with lo < k < hi, where lo = floor(prev * 62^L)
  // and hi = ceil(next * 62^L). Both are built one digit at a time, so the search is O(L).
  const wanted = BigInt(count);
  let lo = 0n;
  let nextTrunc = 0n;
  let shortest: number | undefined;
  for (let length = 1; ; length++) {
    lo = lo * BASE + (prev === null ? 0n : digitAt(prev, length - 1));
    nextTrunc = nextTrunc * BASE + (next === null ? 0n : digitAt(next, length - 1));
    // Without trailing zeros a longer `next` has a non-zero tail, so ceil rounds up.
    const hi = next === null ? BASE ** BigInt(length) : nextTrunc + (next.length > length ? 1n : 0n);
    const gap = hi - lo;
    if (gap - 1n < wanted) continue;
    // At an open end, deep enough that the batch takes at most the fraction f of the open end,
    // where f is what is left of it (gap / 62^L), but never more than two digits past the
    // shortest length that fits: see below.
    const openEnd = (prev === null) !== (next === null);
    shortest ??= length;
    if (openEnd && length < shortest + OPEN_END_EXTRA_DIGITS && gap * gap < wanted * BASE ** BigInt(length)) continue;
    const ranks: string[] = new Array<string>(count);
    if (openEnd) {
      // An open end (appending after the last rank, or before the first): the values next to the
      // known neighbour, leaving the rest of the open end for later batches. Spreading over it
      // would leave 1/(count+1) of it each time, a digit every one or two batches of 20. Taking at
      // most f² of the space when f of it is left makes f fall like 1/k over k batches, so rank
      // length grows with log(k); past the two-digit cap a batch takes at most 1/62² of what is
      // left, a digit per ~15,000 batches. A canvas that grows at one end never needs a rebalance.
      for (let i = 0; i < count; i++) ranks[i] = toRank(prev === null ? hi - wanted + BigInt(i) : lo + BigInt(i + 1), length);
    } else {
      // floor(i * gap / (count+1)) steps by at least 1 because gap >= count+1, and stays in (0, gap).
      for (let i = 0; i < count; i++) ranks[i] = toRank(lo + (BigInt(i + 1) * gap) / (wanted + 1n), length);
    }
    const longest = ranks.reduce((max, r) => Math.max(max, r.length), 0);
    if (longest > MAX_RANK_LENGTH) {
      throw new RankSpaceExhaustedError(`ranks would need ${longest} characters; rebalance the list first`);
    }
    return ranks;
  }
}

/**
 * Evenly spaced, shortest possible ranks for `count` items: length ceil(log62(count + 1)).
 * Used to rewrite every rank of a canvas in one transaction when {@link needsRebalance} fires.
 *
 * @param count - number of items (0..{@link MAX_EVEN_RANKS}); 0 gives an empty list
 * @throws RangeError on a bad count
 */
export function evenRanks(count: number): string[] {
  assertCount(count, MAX_EVEN_RANKS, 0);
  return count === 0 ? [] : spread(null, null, count);
}

/**
 * True when `rank` is longer than {@link REBALANCE_THRESHOLD}. Since one insert adds at most one
 * digit, rebalancing as soon as this fires keeps every rank below {@link MAX_RANK_LENGTH}.
 */
export function needsRebalance(rank: string): boolean {
  return rank.length > REBALANCE_THRESHOLD;
}
