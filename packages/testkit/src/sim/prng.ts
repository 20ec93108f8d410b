/**
 * Seeded pseudo-random numbers for the simulation: sfc32 (Chris Doty-Humphrey's Small Fast
 * Counting generator), seeded through splitmix32.
 *
 * Terms: the *root seed* is the one number a run is replayed from; every component draws from
 * its own *stream*, forked from the root by a label, so adding draws in one component does not
 * shift the numbers another component sees.
 *
 * Invariants:
 * 1. The same seed gives the same sequence on every platform: only 32-bit integer arithmetic
 *    (`Math.imul`, `>>>`) is used, never `Math.random` or floating-point state.
 * 2. `fork(label)` depends only on the parent's seed and the label, never on how many numbers
 *    the parent has drawn.
 */

export interface Prng {
  /** The seed this stream was made from. */
  readonly seed: number
  /** A uniform 32-bit unsigned integer. */
  u32(): number
  /** A uniform float in [0, 1). */
  float(): number
  /** A uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T
  /** Fills `bytes` with random bytes (a `RandomSource` for `createClientId`). */
  fill(bytes: Uint8Array): void
  /** An independent stream for a component, derived from this stream's seed and `label`. */
  fork(label: string): Prng
}

/**
 * Makes a stream from a 32-bit seed.
 *
 * @example
 * const rng = createPrng(42)
 * rng.int(1, 6) // the same die roll on every run with seed 42
 */
export function createPrng(seed: number): Prng {
  const root = seed >>> 0
  let s = root
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split()
  let b = split()
  let c = split()
  let d = split()
  const u32 = () => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = ((c << 21) | (c >>> 11)) >>> 0
    c = (c + t) >>> 0
    return t
  }
  // Warm up: the first outputs of sfc32 are poorly mixed for small seeds.
  for (let i = 0; i < 12; i++) u32()
  const float = () => u32() / 4294967296
  return {
    seed: root,
    u32,
    float,
    int(min, max) {
      if (!(max >= min)) throw new Error(`Ledgerline bug: int(${min}, ${max})`)
      return min + Math.floor(float() * (max - min + 1))
    },
    chance: (p) => p > 0 && float() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('Ledgerline bug: pick from an empty array')
      return items[Math.floor(float() * items.length)] as T
    },
    fill(bytes) {
      for (let i = 0; i < bytes.length; i++) bytes[i] = u32() & 0xff
    },
    fork: (label) => createPrng(hashText(label, root)),
  }
}

/**
 * FNV-1a (32 bit) of a string, continuing from `basis`: cheap, stable, good enough to mix labels
 * into seeds and events into trace hashes.
 *
 * @example
 * hashText('client-3') // the same number everywhere
 */
export function hashText(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}
