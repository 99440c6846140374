/**
 * Native fetches over TLS with a private CA (native/nfetch.c, src/chunks/nativefetch.ts): a store
 * behind a certificate signed by a CA that Node trusts through `$NODE_EXTRA_CA_CERTS` is fetched
 * on the addon's threads too (curl is given those CAs besides the system's), with the right bytes
 * and no failed native GET. Real parts: openssl makes the CA and the certificate, an HTTPS server
 * forwards to s3rver, and the reader is a separate Node process started with that variable (Node
 * reads it only at start).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { openStore } from '../../src/store/open.js';
import { loadAddon } from '../../src/util/addon.js';
import { startS3, startTlsFront, type S3Server, type TlsFront } from '../helpers/s3server.js';

const PREFIX = 'volumes/v1/packs/';
const dist = (rel: string): string => new URL(`../../src/${rel}`, import.meta.url).href;

/** A CA and a certificate for 127.0.0.1 signed by it (PEM files in dir). */
function makeCerts(dir: string): { ca: string; key: string; cert: string } {
  const f = (n: string): string => path.join(dir, n);
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ossl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=cairn test CA',
  );
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${JSON.stringify(f('ext.cnf'))}`]);
  ossl(
    'x509',
    '-req',
    '-in',
    f('srv.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('srv.pem'),
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
  );
  return { ca: f('ca.pem'), key: f('srv.key'), cert: f('srv.pem') };
}

describe(
  'native fetches over TLS with a private CA',
  { skip: (loadAddon() as { nfetchRun?: unknown } | undefined)?.nfetchRun ? false : 'addon without libcurl' },
  () => {
    let s3: S3Server;
    let dir: string;
    let tls: TlsFront;
    let ca: string;

    before(async () => {
      s3 = await startS3();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-nfetch-tls-'));
      const certs = makeCerts(dir);
      ca = certs.ca;
      tls = await startTlsFront(s3.endpoint, await fs.readFile(certs.key), await fs.readFile(certs.cert));
    });

    after(async () => {
      await tls?.close();
      await s3?.stop();
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('a store whose CA is in $NODE_EXTRA_CA_CERTS is fetched on the addon threads, the right bytes', async () => {
      const url = s3.freshUrl();
      const store = await openStore(url);
      const data = crypto.randomBytes(6 * 1024 * 1024);
      const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null, nativeFetch: false }).writer();
      const refs = await w.write(data);
      await w.finish();
      await store.close();
      const tlsUrl = url.replace(s3.endpoint, tls.endpoint);
      const script = `
      const { openStore } = await import(${JSON.stringify(dist('store/open.js'))});
      const { ChunkFetcher } = await import(${JSON.stringify(dist('chunks/fetch.js'))});
      const { nativeFetchStats } = await import(${JSON.stringify(dist('chunks/nativefetch.js'))});
      const { createHash } = await import('node:crypto');
      const store = await openStore(${JSON.stringify(tlsUrl)});
      const f = new ChunkFetcher({ store, packPrefix: ${JSON.stringify(PREFIX)}, cache: null, mem: null, leases: null });
      const got = Buffer.concat(await Promise.all(f.fetchEach(${JSON.stringify(refs)})));
      console.log(JSON.stringify({ sha: createHash('sha256').update(got).digest('hex'), pool: f.pool?.constructor.name, ...nativeFetchStats }));
      await store.close();`;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--input-type=module', '-e', script],
          { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, timeout: 60_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
      const r = JSON.parse(out.trim().split('\n').pop()!) as {
        sha: string;
        pool: string;
        runs: number;
        failures: number;
        lastError?: string;
      };
      assert.equal(r.sha, crypto.createHash('sha256').update(data).digest('hex'));
      assert.equal(r.pool, 'NativeFetchPool');
      assert.ok(r.runs >= 1, `native runs: ${r.runs}`);
      assert.equal(r.failures, 0, `no native GET failed (curl trusted the CA): ${r.lastError}`);
    });
  },
);
