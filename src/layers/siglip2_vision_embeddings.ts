import * as tf from '@tensorflow/tfjs';
import { SiglipLayer, type Shape, type SiglipLayerArgs, checkLastDim, firstShape } from './base.js';
import { antialiasBilinearMatrix } from './kernels/antialias_resize.js';
import { linear } from './kernels/linear.js';
import { hostValues } from '../util/host_values.js';

export interface Siglip2VisionEmbeddingsArgs extends SiglipLayerArgs {
  hiddenSize: number;
  patchSize: number;
  /** Rows of the learned position table; a perfect square (the table is a sqrt x sqrt grid). */
  numPatches: number;
  numChannels?: number;
}

/** How many resize matrices are kept (least recently used are dropped first). */
const CACHE_LIMIT = 64;
const matrixCache = new Map<string, Float32Array>();

/**
 * The float32 `[h*w, grid*grid]` matrix resizing the `grid x grid` position table to an `h x w` patch grid
 * (computed in float64, rounded once), cached per `(grid, h, w)`.
 */
export function positionResizeMatrix(grid: number, h: number, w: number): Float32Array {
  const key = `${grid}:${h}x${w}`;
  let m = matrixCache.get(key);
  if (m) {
    matrixCache.delete(key);
  } else {
    m = Float32Array.from(antialiasBilinearMatrix(grid, grid, h, w));
    if (matrixCache.size >= CACHE_LIMIT) {
      matrixCache.delete(matrixCache.keys().next().value as string);
    }
  }
  matrixCache.set(key, m);
  return m;
}

/** Reads and checks `spatialShapes` `[B, 2]` against the number of patch slots. */
export function readSpatialShapes(
  spatialShapes: tf.Tensor,
  batch: number,
  maxPatches: number,
  where: string,
): [number, number][] {
  if (
    spatialShapes.rank !== 2 ||
    spatialShapes.shape[0] !== batch ||
    spatialShapes.shape[1] !== 2
  ) {
    throw new Error(
      `${where}: spatialShapes must have shape [${batch}, 2] (one (h, w) per image), got [${spatialShapes.shape.join(', ')}]`,
    );
  }
  const values = hostValues(spatialShapes, `${where}: spatialShapes`);
  const out: [number, number][] = [];
  for (let i = 0; i < batch; i++) {
    const h = values[2 * i];
    const w = values[2 * i + 1];
    if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
      throw new Error(
        `${where}: spatialShapes[${i}] = (${h}, ${w}) must be two positive integers (patch rows, patch columns)`,
      );
    }
    if (h * w > maxPatches) {
      throw new Error(
        `${where}: spatialShapes[${i}] = (${h}, ${w}) needs ${h * w} patches, more than the ${maxPatches} slots of pixelValues`,
      );
    }
    out.push([h, w]);
  }
  return out;
}

/**
 * `Siglip2VisionEmbeddings` (NaFlex): a Linear patch embedding over pre-patchified pixels plus the learned
 * position grid resized to each image's patch grid.
 *
 * Inputs: `[pixelValues, spatialShapes]`: pixel values `[B, maxPatches, C*p*p]` float32 (each row one patch
 * flattened as (py, px, c), padding rows after the `h*w` real ones), spatial shapes `[B, 2]` int32 `(h, w)`.
 * Output `[B, maxPatches, D]` = patch embeddings + positions, where the `sqrt(numPatches)^2` position grid is
 * resized to `(h, w)` with antialiased bilinear interpolation (`F.interpolate(bilinear, align_corners=False,
 * antialias=True)`), flattened row-major, and padding slots take row 0 of the resized table.
 *
 * Weights: `patch_embedding/kernel` `[C*p*p, D]`, `patch_embedding/bias` `[D]`, `position_embedding/embeddings`
 * `[numPatches, D]`. The resize is a constant matrix per image (cached per `(h, w)`), applied with one matMul,
 * so gradients reach the position table.
 */
export class Siglip2VisionEmbeddings extends SiglipLayer {
  static readonly className = 'Siglip2VisionEmbeddings';
  readonly hiddenSize: number;
  readonly patchSize: number;
  readonly numPatches: number;
  readonly numChannels: number;
  /** Side of the position grid. */
  readonly gridSize: number;
  patchKernel!: tf.LayerVariable;
  patchBias!: tf.LayerVariable;
  positionEmbedding!: tf.LayerVariable;

  constructor(args: Siglip2VisionEmbeddingsArgs) {
    super(args);
    this.hiddenSize = args.hiddenSize;
    this.patchSize = args.patchSize;
    this.numPatches = args.numPatches;
    this.numChannels = args.numChannels ?? 3;
    this.gridSize = Math.round(Math.sqrt(args.numPatches));
    if (!Number.isInteger(args.numPatches) || this.gridSize ** 2 !== args.numPatches) {
      throw new Error(
        `${this.name}: numPatches must be a perfect square (the position grid), got ${args.numPatches}`,
      );
    }
  }

  /** Length of one flattened patch, `C*p*p`. */
  get patchDim(): number {
    return this.numChannels * this.patchSize * this.patchSize;
  }

  override build(_inputShape: Shape | Shape[]): void {
    this.patchKernel = this.addParam(
      'patch_embedding/kernel',
      [this.patchDim, this.hiddenSize],
      'kernel',
    );
    this.patchBias = this.addParam('patch_embedding/bias', [this.hiddenSize], 'zeros');
    this.positionEmbedding = this.addParam(
      'position_embedding/embeddings',
      [this.numPatches, this.hiddenSize],
      'embedding',
    );
    this.built = true;
  }

  /** The Linear patch embedding alone: `[B, maxPatches, C*p*p]` -> `[B, maxPatches, D]`. */
  patchEmbeds(pixelValues: tf.Tensor): tf.Tensor {
    if (pixelValues.rank !== 3) {
      throw new Error(
        `${this.name}: pixelValues must be [batch, maxPatches, ${this.patchDim}], got [${pixelValues.shape.join(', ')}]`,
      );
    }
    checkLastDim(`${this.name}: pixelValues`, pixelValues.shape, this.patchDim);
    return tf.tidy(() =>
      linear(
        pixelValues.toFloat(),
        this.patchKernel.read() as tf.Tensor2D,
        this.patchBias.read() as tf.Tensor1D,
      ),
    );
  }

  /**
   * The position table resized to each image's grid, `[B, maxPatches, D]`: rows `0..h*w-1` hold the resized
   * grid (row-major), the padding rows repeat row 0. `spatialShapes` `[B, 2]` `(h, w)` per image.
   */
  resizedPositionEmbeddings(spatialShapes: tf.Tensor, maxPatches: number): tf.Tensor {
    const batch = spatialShapes.shape[0];
    const shapes = readSpatialShapes(spatialShapes, batch, maxPatches, this.name);
    const g = this.gridSize;
    const n = g * g;
    const interp = new Float32Array(batch * maxPatches * n);
    shapes.forEach(([h, w], i) => {
      const m = positionResizeMatrix(g, h, w);
      const base = i * maxPatches * n;
      interp.set(m, base);
      const first = m.subarray(0, n);
      for (let r = h * w; r < maxPatches; r++) interp.set(first, base + r * n);
    });
    return tf.tidy(() => {
      const weights = tf.tensor2d(interp, [batch * maxPatches, n]);
      const table = this.positionEmbedding.read() as tf.Tensor2D;
      return tf.matMul(weights, table).reshape([batch, maxPatches, this.hiddenSize]);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) {
      throw new Error(`${this.name}: expected inputs [pixelValues, spatialShapes]`);
    }
    const [pixels, spatialShapes] = inputs;
    if (spatialShapes.shape[0] !== pixels.shape[0]) {
      throw new Error(
        `${this.name}: pixelValues has ${pixels.shape[0]} images but spatialShapes has ${spatialShapes.shape[0]} rows`,
      );
    }
    return tf.tidy(() => {
      const embeds = this.patchEmbeds(pixels);
      const positions = this.resizedPositionEmbeddings(spatialShapes, pixels.shape[1] as number);
      return embeds.add(positions);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = firstShape(inputShape);
    return [shape[0], shape[1], this.hiddenSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.withBaseConfig({
      hiddenSize: this.hiddenSize,
      patchSize: this.patchSize,
      numPatches: this.numPatches,
      numChannels: this.numChannels,
    });
  }
}
tf.serialization.registerClass(Siglip2VisionEmbeddings);
