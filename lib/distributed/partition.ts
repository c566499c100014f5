import { seededPermutation, seededRandom } from '../random';

/** How a dataset's training images are split among partitions (one per worker of a distributed run). */
export type PartitionStrategy = 'iid' | 'by-class' | 'dirichlet';

export interface PartitionSpec {
  strategy: PartitionStrategy;
  /** Concentration of the Dirichlet draws (dirichlet only): small values give each partition few classes. */
  alpha: number;
  seed: number;
}

/** A partition spec that cannot be met by the data (more partitions than classes for by-class, say). */
export class PartitionError extends Error {
  override name = 'PartitionError';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/**
 * Assigns every training image (given by its class index) to one of `numPartitions` partitions; returns each
 * partition's image indices, ascending. The same labels and spec give the same partitions.
 */
export function partitionIndices(labels: ArrayLike<number>, numClasses: number, numPartitions: number, spec: PartitionSpec): Int32Array[] {
  if (!Number.isInteger(numPartitions) || numPartitions < 1 || numPartitions > labels.length) {
    throw new PartitionError('numPartitions', `must be an integer from 1 to the ${labels.length} training images, not ${numPartitions}`);
  }
  const assignment = assign(labels, numClasses, numPartitions, spec);
  const sizes = new Array<number>(numPartitions).fill(0);
  for (const partition of assignment) sizes[partition]!++;
  const partitions = sizes.map((size) => new Int32Array(size));
  const filled = new Array<number>(numPartitions).fill(0);
  assignment.forEach((partition, image) => (partitions[partition]![filled[partition]!++] = image));
  return partitions;
}

/** Images per class in each partition. */
export function countsPerClass(labels: ArrayLike<number>, numClasses: number, partitions: Int32Array[]): number[][] {
  return partitions.map((indices) => {
    const counts = new Array<number>(numClasses).fill(0);
    for (const image of indices) counts[labels[image]!]!++;
    return counts;
  });
}

function assign(labels: ArrayLike<number>, numClasses: number, numPartitions: number, spec: PartitionSpec): Int32Array {
  switch (spec.strategy) {
    case 'iid':
      return assignIid(labels.length, numPartitions, spec.seed);
    case 'by-class':
      return assignByClass(labels, numClasses, numPartitions, spec.seed);
    case 'dirichlet':
      return assignDirichlet(labels, numClasses, numPartitions, spec);
    default:
      throw new PartitionError('partition.strategy', `must be iid, by-class or dirichlet, not "${String(spec.strategy)}"`);
  }
}

/** Shuffled, then dealt round-robin: sizes differ by at most one. */
function assignIid(count: number, numPartitions: number, seed: number): Int32Array {
  const assignment = new Int32Array(count);
  seededPermutation(count, seed).forEach((image, i) => (assignment[image] = i % numPartitions));
  return assignment;
}

/** Whole classes, largest first, each to the partition with the fewest images so far (ties broken by the seed). */
function assignByClass(labels: ArrayLike<number>, numClasses: number, numPartitions: number, seed: number): Int32Array {
  const classCounts = imagesPerClass(labels, numClasses);
  const present = [...seededPermutation(numClasses, seed)].filter((c) => classCounts[c]! > 0);
  if (present.length < numPartitions) {
    throw new PartitionError('numPartitions', `by-class gives each partition whole classes, and the training images hold only ${present.length} classes, fewer than ${numPartitions} partitions`);
  }
  // A stable sort keeps the seeded order among classes of equal size.
  present.sort((a, b) => classCounts[b]! - classCounts[a]!);
  const sizes = new Array<number>(numPartitions).fill(0);
  const partitionOf = new Int32Array(numClasses);
  for (const c of present) {
    const smallest = sizes.indexOf(Math.min(...sizes));
    partitionOf[c] = smallest;
    sizes[smallest]! += classCounts[c]!;
  }
  return Int32Array.from(labels, (label) => partitionOf[label]!);
}

/**
 * Per class, the shares of its (shuffled) images each partition gets are drawn from Dirichlet(alpha): the usual
 * non-IID benchmark split (Hsu et al. 2019). A partition left empty then takes one image from the largest.
 */
function assignDirichlet(labels: ArrayLike<number>, numClasses: number, numPartitions: number, spec: PartitionSpec): Int32Array {
  if (!(spec.alpha > 0)) throw new PartitionError('partition.alpha', `must be greater than 0, not ${spec.alpha}`);
  const random = seededRandom(spec.seed);
  const byClass = imagesByClass(labels, numClasses);
  const assignment = new Int32Array(labels.length);
  for (const images of byClass) {
    const order = seededPermutation(images.length, Math.floor(random() * 2 ** 31));
    const shares = dirichlet(random, spec.alpha, numPartitions);
    let start = 0;
    let cumulative = 0;
    shares.forEach((share, partition) => {
      cumulative += share;
      const end = partition === numPartitions - 1 ? images.length : Math.round(cumulative * images.length);
      for (let i = start; i < end; i++) assignment[images[order[i]!]!] = partition;
      start = Math.max(start, end);
    });
  }
  fillEmptyPartitions(assignment, numPartitions);
  return assignment;
}

function fillEmptyPartitions(assignment: Int32Array, numPartitions: number): void {
  const sizes = new Array<number>(numPartitions).fill(0);
  for (const partition of assignment) sizes[partition]!++;
  for (let empty = sizes.indexOf(0); empty !== -1; empty = sizes.indexOf(0)) {
    const largest = sizes.indexOf(Math.max(...sizes));
    const image = assignment.indexOf(largest);
    assignment[image] = empty;
    sizes[largest]!--;
    sizes[empty]!++;
  }
}

function imagesPerClass(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

function imagesByClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const byClass = Array.from({ length: numClasses }, () => [] as number[]);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  return byClass;
}

/** A draw from the symmetric Dirichlet(alpha) over `k` outcomes: normalised Gamma(alpha, 1) draws. */
export function dirichlet(random: () => number, alpha: number, k: number): number[] {
  const draws = Array.from({ length: k }, () => gamma(random, alpha));
  const total = draws.reduce((a, b) => a + b, 0);
  // Tiny alphas can underflow every draw to 0: then all the mass goes to one outcome, as the limit does.
  if (total === 0) return draws.map((_, i) => (i === Math.floor(random() * k) ? 1 : 0));
  return draws.map((d) => d / total);
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 boosted by U^(1/shape). */
function gamma(random: () => number, shape: number): number {
  if (shape < 1) return gamma(random, shape + 1) * Math.pow(random(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A standard normal draw (Box-Muller). */
function normal(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
