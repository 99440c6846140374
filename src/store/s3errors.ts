/**
 * What an S3 failure means to a Cairn user: the SDK's and the network's errors mapped to
 * CairnError codes with hints (the S3 store's one error table).
 */
import { CairnError, type ErrorContext } from '../errors.js';
import { NETWORK_CODES, THROTTLE_NAMES, transientKind, type SdkError } from './s3transport.js';

/** Where an S3 error happened: the store's URL, its bucket and a name for its endpoint. */
export interface S3Where {
  store: string;
  bucket: string;
  endpoint: string;
}

/**
 * An SDK/network failure as a CairnError: NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE (unreachable,
 * failing or throttling) or IO, with a hint; `suffix` ends the message (how often it was tried).
 *
 * @example throw mapS3Error(err, { store, bucket, endpoint }, `cannot get ${key}`, key);
 */
export function mapS3Error(err: unknown, where: S3Where, message: string, key?: string, suffix = ''): CairnError {
  if (err instanceof CairnError) {
    if (!suffix) return err;
    // A transfer cut short (readBody), every attempt: say where and how often.
    return new CairnError(
      err.code,
      `${message}: ${err.message}${suffix}`,
      {
        ...err.context,
        store: where.store,
        key,
        hint: `${where.endpoint} keeps cutting transfers short; check the network and the server, then retry`,
      },
      { cause: err },
    );
  }
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.Code ?? '';
  const netCode = e.code ?? (err as { cause?: { code?: string } })?.cause?.code ?? '';
  const detail = e.message ?? String(err);
  const ctx: ErrorContext = { store: where.store, key, status, s3Code: name };
  const make = (code: CairnError['code'], hint: string): CairnError =>
    new CairnError(code, `${message}: ${detail}${suffix}`, { ...ctx, hint }, { cause: err });
  if (name === 'NoSuchBucket') return make('NOT_FOUND', `bucket ${where.bucket} does not exist; create it first`);
  if (name === 'NoSuchKey' || status === 404) return make('NOT_FOUND', 'the object does not exist');
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return make('PERMISSION_DENIED', 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the profile) and the bucket policy');
  }
  const transientNoStatus = transientKind(err) !== undefined && (status === undefined || status < 300);
  if (
    NETWORK_CODES.has(netCode) ||
    NETWORK_CODES.has(name) ||
    transientNoStatus ||
    (status === undefined && /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|timed? ?out/i.test(detail))
  ) {
    return make('UNAVAILABLE', `cannot reach ${where.endpoint}; check the endpoint and that the server is running`);
  }
  if ((status !== undefined && (status >= 500 || status === 429)) || THROTTLE_NAMES.has(name)) {
    return make('UNAVAILABLE', `${where.endpoint} is failing (HTTP ${status ?? '?'} ${name}); retry later`);
  }
  return make('IO', `unexpected S3 error from ${where.endpoint}`);
}
