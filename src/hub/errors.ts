/** Download errors: the typed error, and the messages made from the hub's HTTP status and X-Error-Code. */
import { HubApiError } from '@huggingface/hub';

/** A download failure with the HTTP status and hub error code (X-Error-Code) when there was one. */
export class HubDownloadError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HubDownloadError';
  }
}

/** What a failed hub response said. */
export interface HttpFailure {
  url: string;
  status: number;
  code?: string;
  message?: string;
}

/** Where a failure happened, for its message. */
export interface FailureContext {
  repoId: string;
  revision: string;
  endpoint: string;
  token?: string;
}

/** The error for a failed hub response, saying what to check (id, revision, file, token, licence). */
export function httpError(
  failure: HttpFailure,
  ctx: FailureContext,
  file?: string,
): HubDownloadError {
  const { status, code } = failure;
  const page = `${ctx.endpoint}/${ctx.repoId}`;
  const detail = failure.message ? ` (${failure.message})` : '';
  const where = `${failure.url} answered HTTP ${status}${code ? ` ${code}` : ''}${detail}`;
  if (code === 'RepoNotFound') {
    return new HubDownloadError(
      `repository ${ctx.repoId} not found on ${ctx.endpoint}: check the id (org/name); if it is private ` +
        `or gated, set HF_TOKEN to an access token that can read it. ${where}`,
      status,
      code,
    );
  }
  if (code === 'RevisionNotFound') {
    return new HubDownloadError(
      `revision ${JSON.stringify(ctx.revision)} not found in ${ctx.repoId}: check the branch, tag or ` +
        `commit sha. ${where}`,
      status,
      code,
    );
  }
  if (code === 'EntryNotFound' || (status === 404 && file)) {
    return new HubDownloadError(
      `file ${JSON.stringify(file ?? '?')} not found in ${ctx.repoId} at revision ${ctx.revision}. ${where}`,
      status,
      code,
    );
  }
  if (status === 401 || status === 403) {
    const tokenNote = ctx.token
      ? status === 401
        ? 'the token given (HF_TOKEN or the token option) was rejected: check that it is valid'
        : 'the token given (HF_TOKEN or the token option) has no access yet'
      : 'no token was sent: set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens)';
    return new HubDownloadError(
      `${ctx.repoId} is gated or private (HTTP ${status}): ${tokenNote}, and accept the licence on the model ` +
        `page ${page} with the same account. ${where}`,
      status,
      code,
    );
  }
  if (status === 404) {
    return new HubDownloadError(
      `repository ${ctx.repoId} or revision ${JSON.stringify(ctx.revision)} not found on ${ctx.endpoint}. ${where}`,
      status,
      code,
    );
  }
  return new HubDownloadError(`hub request failed: ${where}`, status, code);
}

/** The failure a response describes (X-Error-Code / X-Error-Message, else the body). */
export async function failureOf(res: Response): Promise<HttpFailure> {
  let message = res.headers.get('x-error-message') ?? undefined;
  if (!message) {
    try {
      const text = (await res.text()).slice(0, 300);
      try {
        const json = JSON.parse(text) as { error?: unknown };
        message = typeof json.error === 'string' ? json.error : text;
      } catch {
        message = text || undefined;
      }
    } catch {
      message = undefined;
    }
  }
  return {
    url: res.url,
    status: res.status,
    code: res.headers.get('x-error-code') ?? undefined,
    message,
  };
}

/**
 * The hub's own message in a HubApiError from @huggingface/hub, read from the response body it keeps (`data`:
 * `error` / `message`, and `error_description`), not from the error's message text.
 */
export function hubApiMessage(e: HubApiError): string | undefined {
  const data = e.data as
    { error?: unknown; message?: unknown; error_description?: unknown } | undefined;
  const main = [data?.error, data?.message].find(
    (m): m is string => typeof m === 'string' && m !== '',
  );
  const detail = typeof data?.error_description === 'string' ? data.error_description : undefined;
  if (main === undefined) return detail;
  return detail ? `${main}: ${detail}` : main;
}

/** A network failure (fetch rejected), as opposed to an HTTP answer. */
export function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError && !(e instanceof HubApiError);
}
