// Checks the layer graph of a model.json's modelTopology before TF.js builds it. TF.js's deserializer waits for
// every inbound node to appear and loops forever when one never does (an inbound layer that does not exist, a node
// index it never reaches, or a cycle), so these are refused here first. Browser-safe.
import { ArtifactFormatError } from '../util/errors.js';

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const isIndex = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;

/** Throws an ArtifactFormatError unless every node of a functional model's layer graph can be built. */
export function checkTopologyGraph(topology: unknown, where: string): void {
  const fail = (message: string) =>
    new ArtifactFormatError(`${where}: modelTopology: ${message}`, where, 'modelTopology');
  if (!isRecord(topology) || !isRecord(topology.config)) throw fail('no config object');
  const config = topology.config;
  if (topology.class_name === 'Sequential') return; // no graph: layers are chained in order
  if (!Array.isArray(config.layers)) throw fail('config.layers is not a list');
  type Input = [string, number];
  const pending = new Map<string, Input[][]>();
  const nodes = new Map<string, number>();
  for (const layer of config.layers as unknown[]) {
    if (
      !isRecord(layer) ||
      typeof layer.name !== 'string' ||
      typeof layer.class_name !== 'string'
    ) {
      throw fail('a layer has no name or class_name');
    }
    if (nodes.has(layer.name)) throw fail(`two layers are named '${layer.name}'`);
    const inbound = layer.inbound_nodes ?? [];
    if (!Array.isArray(inbound)) throw fail(`layer '${layer.name}': inbound_nodes is not a list`);
    const parsed: Input[][] = [];
    for (const node of inbound as unknown[]) {
      // TF.js builds no node from an empty input list, so a later reference to it would wait forever.
      if (!Array.isArray(node) || !node.length) {
        throw fail(`layer '${layer.name}': an inbound node is not a non-empty list`);
      }
      parsed.push(
        node.map((input: unknown) => {
          if (
            !Array.isArray(input) ||
            input.length < 3 ||
            typeof input[0] !== 'string' ||
            !isIndex(input[1]) ||
            !isIndex(input[2]) ||
            (input[3] != null && !isRecord(input[3]))
          ) {
            throw fail(
              `layer '${layer.name}': inbound ${JSON.stringify(input)} is not [layer, node, tensor, kwargs]`,
            );
          }
          return [input[0], input[1]] as Input;
        }),
      );
    }
    // An InputLayer has its one node from the start.
    nodes.set(layer.name, layer.class_name === 'InputLayer' ? 1 : 0);
    pending.set(layer.name, parsed);
  }
  // TF.js's order: passes over the layers, each building the nodes whose inputs exist, until none is left.
  let progress = true;
  while (progress) {
    progress = false;
    for (const [name, queue] of pending) {
      while (queue.length && queue[0].every(([l, n]) => (nodes.get(l) ?? -1) > n)) {
        queue.shift();
        nodes.set(name, nodes.get(name)! + 1);
        progress = true;
      }
    }
  }
  for (const [name, queue] of pending) {
    if (queue.length) {
      const missing = queue[0].find(([l, n]) => !((nodes.get(l) ?? -1) > n))!;
      throw fail(
        `layer '${name}' takes node ${missing[1]} of '${missing[0]}', which ` +
          (nodes.has(missing[0])
            ? 'is never built (a cycle, or no such node)'
            : 'is not a layer of the model'),
      );
    }
  }
  for (const key of ['input_layers', 'output_layers'] as const) {
    const list = config[key];
    if (!Array.isArray(list) || !list.length) throw fail(`config.${key} is not a non-empty list`);
    for (const entry of list as unknown[]) {
      if (
        !Array.isArray(entry) ||
        typeof entry[0] !== 'string' ||
        !isIndex(entry[1]) ||
        !isIndex(entry[2]) ||
        !((nodes.get(entry[0]) ?? -1) > (entry[1] as number))
      ) {
        throw fail(`config.${key} entry ${JSON.stringify(entry)} names no built node`);
      }
    }
  }
}
