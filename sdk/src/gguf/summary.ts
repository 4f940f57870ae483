import { ggmlTypeName } from '../contract/ggml-types.js';
import type { GGUFHeader, GGUFMetadata } from './types.js';

export interface GGUFTypeUsage {
  type: number;
  name: string;
  tensors: number;
  bytes: number;
}

/** What the CLI's `info` command prints about a GGUF file. */
export interface GGUFSummary {
  version: number;
  architecture?: string;
  name?: string;
  parameterCount: number;
  tensorCount: number;
  tensorBytes: number;
  /** Per ggml type, largest share first. */
  types: GGUFTypeUsage[];
  tokenizerModel?: string;
  vocabSize?: number;
  contextLength?: number;
  alignment: number;
}

export function summarizeGGUF(header: GGUFHeader): GGUFSummary {
  const { metadata } = header;
  const architecture = stringValue(metadata, 'general.architecture');
  const usage = new Map<number, GGUFTypeUsage>();
  let parameterCount = 0;
  let tensorBytes = 0;
  for (const tensor of header.tensors) {
    parameterCount += tensor.dims.reduce((a, b) => a * b, 1);
    tensorBytes += tensor.byteSize;
    const entry = usage.get(tensor.type) ?? { type: tensor.type, name: ggmlTypeName(tensor.type), tensors: 0, bytes: 0 };
    entry.tensors += 1;
    entry.bytes += tensor.byteSize;
    usage.set(tensor.type, entry);
  }
  const tokens = metadata['tokenizer.ggml.tokens'];
  return {
    version: header.version,
    architecture,
    name: stringValue(metadata, 'general.name'),
    parameterCount,
    tensorCount: header.tensors.length,
    tensorBytes,
    types: [...usage.values()].sort((a, b) => b.bytes - a.bytes),
    tokenizerModel: stringValue(metadata, 'tokenizer.ggml.model'),
    vocabSize: Array.isArray(tokens) ? tokens.length : numberValue(metadata, `${architecture}.vocab_size`),
    contextLength: numberValue(metadata, `${architecture}.context_length`),
    alignment: header.alignment,
  };
}

function stringValue(metadata: GGUFMetadata, key: string): string | undefined {
  const value = metadata[key];
  return typeof value === 'string' ? value : undefined;
}

function numberValue(metadata: GGUFMetadata, key: string): number | undefined {
  const value = metadata[key];
  return typeof value === 'number' ? value : undefined;
}
