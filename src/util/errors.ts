// Typed errors for files that are not what they claim to be, so callers (and the fuzzer) can tell a refused
// input from a bug. Each names the file and, where there is one, the field at fault. Browser-safe.

/** A file's content is malformed or inconsistent. `file`: path or URL; `field`: the entry at fault, if any. */
export class FileFormatError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FileFormatError';
  }
}

/** A safetensors file (header length, header JSON, dtype, shape, offsets, data) or its shard index is malformed. */
export class SafetensorsFormatError extends FileFormatError {
  constructor(message: string, file: string, field?: string, options?: { cause?: unknown }) {
    super(message, file, field, options);
    this.name = 'SafetensorsFormatError';
  }
}

/** A converted model's `siglip.json` or a tower's `model.json` is malformed or inconsistent with its files. */
export class ArtifactFormatError extends FileFormatError {
  constructor(message: string, file: string, field?: string, options?: { cause?: unknown }) {
    super(message, file, field, options);
    this.name = 'ArtifactFormatError';
  }
}

/** A Hugging Face `config.json` (or the config embedded in siglip.json) is malformed or unsupported. */
export class ConfigError extends FileFormatError {
  constructor(message: string, file: string, field?: string, options?: { cause?: unknown }) {
    super(message, file, field, options);
    this.name = 'ConfigError';
  }
}

/** A file of a converted model does not have the size or SHA-256 digest that `siglip.json` records. */
export class IntegrityError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly expected: { sha256?: string; size?: number },
    readonly actual: { sha256?: string; size?: number },
  ) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/** A file the model needs cannot be read (missing, unreadable, HTTP error). */
export class FileAccessError extends Error {
  constructor(
    message: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FileAccessError';
  }
}
