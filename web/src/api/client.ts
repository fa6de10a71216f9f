import createClient from 'openapi-fetch';
import { clearSession, getSession } from '../auth/session';
import type { paths } from './schema';

/** One RFC 9457 problem+json, as the gateway answers every error. */
export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem, retryAfter: number | null = null) {
    super(problem.detail || problem.title);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

function asProblem(status: number, body: unknown): Problem {
  if (body && typeof body === 'object' && 'title' in body) {
    return body as Problem;
  }
  return { title: status >= 500 ? 'Service unavailable' : 'Request failed', status };
}

/** Same origin as the application: the gateway serves both. */
export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? '' });

api.use({
  onRequest({ request }) {
    const session = getSession();
    if (session) {
      request.headers.set('Authorization', `Bearer ${session.token}`);
    }
    return request;
  },
  onResponse({ response }) {
    // An expired or revoked token: forget it, so the app returns to the sign-in page.
    if (response.status === 401 && getSession()) {
      clearSession();
    }
    return response;
  },
});

interface Result {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/**
 * The body of a successful call, or an ApiError carrying the problem.
 *
 * Responses are typed by the views in ./types until every gateway operation declares its
 * response model in the OpenAPI document; requests are typed by the generated schema.
 */
export async function call<T>(request: Promise<Result>): Promise<T> {
  let result: Result;
  try {
    result = await request;
  } catch {
    throw new ApiError(0, { title: 'Network error', status: 0 });
  }
  const { data, error, response } = result;
  if (!response.ok) {
    const retry = Number(response.headers.get('Retry-After'));
    throw new ApiError(
      response.status,
      asProblem(response.status, error),
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }
  return data as T;
}

/** A fresh key per user action, so a retried POST is applied once. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
