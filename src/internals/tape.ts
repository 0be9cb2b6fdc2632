/**
 * Gradients that free memory as the backward pass goes, on TF.js's private gradient tape (tfjs-core 4.22
 * `engine.ts` / `tape.ts`; the version is checked in `./tfjs.ts`).
 *
 * TF.js's own `Engine.gradients` keeps two things until the whole backward pass ends: every tensor an op saved for
 * its gradient, and the gradient of every intermediate tensor. For a transformer trained without gradient
 * checkpointing that is the activations of all layers plus the gradients of all layers at once; so400m
 * vision-lora at batch 8 peaked at about 760 MiB a layer, where the saved activations are about 220 MiB.
 *
 * Here, walking the tape backwards, once an op's gradient has been computed
 * - what it saved is released (only its own gradient reads it), and
 * - the gradients of its outputs are released (only it reads them), unless another entry of the gradient map
 *   holds the same tensor object or it is the caller's seed `dy`.
 * Ops that are not on a path from `xs` to `y` never run their gradient, so what they saved is released before the
 * walk starts. The arithmetic, its order and the errors are TF.js's. With a gradient already being recorded
 * (higher-order gradients, where the backward pass is itself taped) TF.js's own method runs unchanged.
 */
import * as tf from '@tensorflow/tfjs';

/** One op recorded on the tape (tfjs-core `TapeNode`). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The parts of tfjs-core's Engine used here (private in its typings). */
interface TapeEngine {
  state: { gradientDepth: number; activeTape: TapeNode[] | null };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: (tf.Tensor | null)[] };
}

function engine(): TapeEngine {
  return tf.engine() as unknown as TapeEngine;
}

/**
 * The ops of `tape` on a path from some x to y, in tape order, each with only the inputs that depend on an x
 * (what TF.js's `getFilteredNodesXToY` computes).
 */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodesFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodesToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const kept: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    kept.push({ ...node, inputs });
  }
  return kept;
}

/** The gradient map of a backward pass: tensor id -> its gradient so far, counting entries per tensor object. */
class GradientMap {
  private readonly byId = new Map<number, tf.Tensor>();
  private readonly holders = new Map<tf.Tensor, number>();

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }

  /** Sets the entry of `id`; returns the tensor it replaces when no other entry holds that object. */
  set(id: number, t: tf.Tensor): tf.Tensor | undefined {
    const old = this.byId.get(id);
    this.byId.set(id, t);
    this.holders.set(t, (this.holders.get(t) ?? 0) + 1);
    return old !== undefined && this.drop(old) ? old : undefined;
  }

  /** Removes the entry of `id`; returns its tensor when no other entry holds that object. */
  take(id: number): tf.Tensor | undefined {
    const t = this.byId.get(id);
    if (!t) return undefined;
    this.byId.delete(id);
    return this.drop(t) ? t : undefined;
  }

  /** Whether some entry holds the tensor object `t`. */
  holds(t: tf.Tensor): boolean {
    return this.holders.has(t);
  }

  private drop(t: tf.Tensor): boolean {
    const n = (this.holders.get(t) ?? 1) - 1;
    if (n > 0) {
      this.holders.set(t, n);
      return false;
    }
    this.holders.delete(t);
    return true;
  }
}

/**
 * `Engine.gradients(f, xs, dy, allowNoGradients)` (what `tf.grads`, `tf.variableGrads` and `tf.valueAndGrads`
 * call), releasing saved tensors and intermediate gradients as soon as the backward pass is done with them.
 * Returns `f()`'s value and the gradient of each x (null where `f` does not depend on it).
 */
export function releasingGradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients = false,
): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const e = engine();
  // Higher-order gradients tape the backward pass itself: keep TF.js's behaviour there.
  if (e.state.gradientDepth !== 0) return e.gradients(f, xs, dy, allowNoGradients);
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy !== undefined && dy.dtype !== 'float32') {
    throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  }
  const y = e.scopedRun(
    () => e.startTape(),
    () => e.endTape(),
    () => tf.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = e.state.activeTape ?? [];
  const nodes = nodesFromXsToY(tape, xs, y);
  if (!allowNoGradients && nodes.length === 0) {
    throw new Error(
      'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all ' +
        'operations that lead from x to y.',
    );
  }
  const onPath = new Set(nodes.map((n) => n.id));
  for (const node of tape) if (!onPath.has(node.id)) tf.dispose(node.saved ?? []);
  const xIds = new Set(xs.map((x) => x.id));
  return tf.tidy('backward', () => {
    const grads = new GradientMap();
    const seed = dy ?? tf.ones(y.shape);
    grads.set(y.id, seed);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      if (node.gradient == null) {
        throw new Error(
          `Cannot compute gradient: gradient function not found for ${node.kernelName}.`,
        );
      }
      const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
      const inputGradients = node.gradient(dys as tf.Tensor[]);
      for (const [name, x] of Object.entries(node.inputs)) {
        if (!(name in inputGradients)) {
          throw new Error(
            `Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`,
          );
        }
        const dx = tf.tidy(() => inputGradients[name]());
        if (dx.dtype !== 'float32') {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' ` +
              `dtype, but has '${dx.dtype}'`,
          );
        }
        if (!tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape ` +
              `'${dx.shape}', which does not match the shape of the input '${x.shape}'`,
          );
        }
        const sum = grads.get(x.id);
        if (sum === undefined) {
          grads.set(x.id, dx);
        } else {
          // The old sum is freed unless another entry holds the same object (TF.js frees it regardless).
          // So is the added gradient, which TF.js keeps to the end of the backward pass.
          const replaced = grads.set(x.id, tf.add(sum, dx));
          if (replaced !== undefined && replaced !== dy) replaced.dispose();
          if (dx !== dy && !grads.holds(dx)) dx.dispose();
        }
      }
      // This op's gradient is done: nothing else reads what it saved or the gradients of its outputs.
      tf.dispose(node.saved ?? []);
      for (const o of node.outputs) {
        if (xIds.has(o.id)) continue;
        const g = grads.take(o.id);
        if (g !== undefined && g !== dy) g.dispose();
      }
    }
    const out = xs.map((x) => grads.get(x.id) ?? null);
    // TF.js's clean-up at the end: what is left saved on the tape (e.g. ops whose gradient threw) is released.
    for (const node of tape) tf.dispose(node.saved ?? []);
    e.state.activeTape = null;
    return { value: y, grads: out as tf.Tensor[] };
  }) as { value: tf.Tensor; grads: (tf.Tensor | null)[] };
}
