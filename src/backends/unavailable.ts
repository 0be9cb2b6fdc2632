/**
 * The error useBackend throws when a backend cannot run here (a package, an adapter or a browser feature is
 * missing), as opposed to a backend that starts and then fails. Callers tell the two apart by type, not by text.
 */
export class BackendUnavailableError extends Error {
  /**
   * @param backend the backend asked for
   * @param why one line: what is missing
   * @param message the full message (default: `useBackend('<backend>'): <why>`)
   */
  constructor(
    readonly backend: string,
    readonly why: string,
    message = `useBackend('${backend}'): ${why}`,
  ) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}
