#!/usr/bin/env node
/*
 * tests/lib/awsproxy.js -- an HTTP proxy in front of s3rver (or RGW) that
 * answers as AWS S3 does where those servers do not: SSE-KMS ETags,
 * regions, additional checksums, conditional PUTs. No npm packages.
 *
 *   node tests/lib/awsproxy.js --upstream http://127.0.0.1:PORT \
 *     [--modes sse-kms,region=eu-central-1,checksums,conditional] \
 *     [--redirect 0|1] [--kms-key-id ARN] [--default-checksum crc64nvme|none] \
 *     [--port-file FILE] [--stats-file FILE] [--log FILE]
 *   (AWSPROXY_MODES in the environment is the default of --modes.)
 *
 * Shell: tests/lib/awsproxy.sh (awsproxy_start MODES); Lua:
 * fp.start_aws { modes = "sse-kms,checksums" } from tests/lib/faultproxy.lua.
 * Listens on 127.0.0.1 on a free port (written to --port-file, printed as
 * "awsproxy listening on PORT"). Point the client at http://127.0.0.1:PORT
 * (path-style; BUCKET.localhost:PORT virtual-hosted works too).
 *
 * Modes (comma-separated, any combination; none = a plain pass-through):
 *   sse-kms      every object ETag the client sees (GET/HEAD/PUT/UploadPart/
 *                Complete/Copy answers, ListObjects v1/v2, ListParts) is a
 *                stable random-looking 32-hex (+ "-N" for multipart) that is
 *                NOT the MD5; object answers carry
 *                x-amz-server-side-encryption: aws:kms and
 *                x-amz-server-side-encryption-aws-kms-key-id. If-Match /
 *                If-None-Match and Complete's part ETags are mapped back.
 *   region=R     the bucket lives in R: a request whose SigV4 credential
 *                scope (header or presigned query) names another region gets
 *                400 AuthorizationHeaderMalformed (query: Authorization-
 *                QueryParametersError) with <Region>R</Region> and
 *                x-amz-bucket-region: R; a HEAD gets the status and headers
 *                only, no body. --redirect 1: 301 PermanentRedirect instead
 *                (with <Endpoint>, <Bucket>). HEAD bucket always carries
 *                x-amz-bucket-region; GET ?location answers R.
 *   checksums    x-amz-checksum-crc32|crc32c|crc64nvme|sha1|sha256 on PUT /
 *                UploadPart (header, or aws-chunked trailer) is verified
 *                (400 BadDigest when wrong, 400 InvalidRequest when
 *                malformed or several), remembered, answered on the PUT and
 *                on GET/HEAD with x-amz-checksum-mode: ENABLED (not on a
 *                Range GET) with x-amz-checksum-type. Multipart uploads
 *                created with x-amz-checksum-algorithm get AWS's COMPOSITE
 *                checksum "B64-N". A single PUT without one gets CRC64NVME,
 *                as AWS computes since 2025 (--default-checksum none: not).
 *                Checksums live in the proxy's memory only.
 *   conditional  PUT / Complete with If-None-Match: * answers 412
 *                PreconditionFailed when the key exists (checked under a
 *                per-key lock, so of two racing PUTs one wins); If-Match:
 *                ETAG likewise 412 when the ETag differs; the headers are
 *                then not forwarded. Without this mode they are forwarded as
 *                they are (s3rver ignores them, as older servers do; RGW 16
 *                honours If-None-Match: *, and If-Match only unquoted).
 *
 * Always: aws-chunked bodies (botocore's trailing checksums) are decoded
 * before forwarding; Content-MD5 is checked (400 BadDigest); an empty
 * <ETag> in a CompleteMultipartUpload answer (RGW 16) is filled in from a
 * HEAD, as AWS answers the object's ETag. A request the
 * proxy changes (decoded body, mapped ETags) or makes itself (the HEAD of a
 * conditional PUT) is signed again with AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY from the proxy's environment (RGW checks
 * signatures); other requests go upstream byte for byte, Host included.
 *
 * Control endpoints: GET /__stats (JSON counters), POST /__config (JSON
 * {"modes": "...", "redirect": 1, ...} replaces those settings),
 * POST /__reset (zero the counters).
 */
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');
const { URL } = require('url');

const cfg = {
  upstream: process.env.AWS_ENDPOINT_URL || '',
  modes: process.env.AWSPROXY_MODES || '',
  redirect: 0,
  kms_key_id: 'arn:aws:kms:REGION:111122223333:key/' +
    '1234abcd-12ab-34cd-56ef-1234567890ab',
  default_checksum: 'crc64nvme',
  port_file: '', stats_file: '', log: '', port: 0,
  access_key: process.env.AWS_ACCESS_KEY_ID || '',
  secret_key: process.env.AWS_SECRET_ACCESS_KEY || '',
};
let mode = {};

function die(msg) { process.stderr.write(msg + '\n'); process.exit(2); }

function parseModes(s) {
  const m = { sse_kms: false, region: '', checksums: false, conditional: false };
  for (const part of String(s).split(',').map((x) => x.trim()).filter(Boolean)) {
    if (part === 'sse-kms') m.sse_kms = true;
    else if (part === 'checksums') m.checksums = true;
    else if (part === 'conditional') m.conditional = true;
    else if (/^region=[a-z0-9-]+$/.test(part)) m.region = part.slice(7);
    else throw new Error(`awsproxy: unknown mode '${part}'`);
  }
  return m;
}

function parseArgs(argv) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) die(`awsproxy: unexpected argument '${a}'`);
    const key = a.slice(2).replace(/-/g, '_');
    if (!(key in cfg)) die(`awsproxy: unknown option '${a}'`);
    const v = argv[++i];
    if (v === undefined) die(`awsproxy: ${a} needs a value`);
    cfg[key] = typeof cfg[key] === 'number' ? Number(v) : v;
  }
  if (!cfg.upstream) die('awsproxy: --upstream (or AWS_ENDPOINT_URL) needed');
  try { mode = parseModes(cfg.modes); } catch (e) { die(e.message); }
}

const stats = {};
function zeroStats() {
  for (const k of ['requests', 'forwarded', 'resigned', 'region_errors',
    'etags_rewritten', 'bad_digest', 'checksums_stored', 'checksums_returned',
    'precondition_failed', 'chunked_decoded'])
    stats[k] = 0;
}
zeroStats();

let logStream = null;
function log(line) { if (logStream) logStream.write(line + '\n'); }

let reqSeq = 0;
function requestId() {
  return 'AWSPROXY' + (++reqSeq).toString(16).toUpperCase().padStart(8, '0');
}
const HOST_ID = 'YXdzcHJveHkgaG9zdCBpZA==';

function xmlError(code, message, extra) {
  let x = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + code +
    '</Code><Message>' + escapeXml(message) + '</Message>';
  for (const [k, v] of Object.entries(extra || {}))
    x += `<${k}>${escapeXml(v)}</${k}>`;
  return x;
}

/* Send an AWS error: XML body (none for HEAD), request ids, extra headers. */
function sendError(req, res, status, code, message, extra, headers) {
  const rid = requestId();
  const body = Buffer.from(xmlError(code, message, extra) +
    `<RequestId>${rid}</RequestId><HostId>${HOST_ID}</HostId></Error>`);
  const h = Object.assign({ 'x-amz-request-id': rid, 'x-amz-id-2': HOST_ID,
    'Content-Type': 'application/xml' }, headers || {});
  if (req.method === 'HEAD') {
    res.writeHead(status, h);
    return res.end();
  }
  h['Content-Length'] = body.length;
  res.writeHead(status, h);
  res.end(body);
}

function escapeXml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;',
    '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}
function unescapeXml(s) {
  return s.replace(/&(quot|amp|lt|gt|apos|#34);/g, (m, e) => ({ quot: '"',
    amp: '&', lt: '<', gt: '>', apos: "'", '#34': '"' })[e]);
}

/* ---- checksums ----------------------------------------------------------- */

function crc32Table(poly) {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}
const CRC32C_T = crc32Table(0x82F63B78);
const CRC32_T = crc32Table(0xEDB88320);
function crc32With(t, buf) {
  let c = 0xFFFFFFFF;
  for (let i = 0; i < buf.length; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xFFFFFFFF) >>> 0);
  return out;
}

/* CRC-64/NVME (reflected poly 0x9A6C9329AC4BC9B5) on two 32-bit halves. */
const CRC64_HI = new Uint32Array(256), CRC64_LO = new Uint32Array(256);
(function () {
  const poly = 0x9A6C9329AC4BC9B5n;
  for (let i = 0; i < 256; i++) {
    let c = BigInt(i);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    CRC64_HI[i] = Number(c >> 32n);
    CRC64_LO[i] = Number(c & 0xFFFFFFFFn);
  }
})();
function crc64nvme(buf) {
  let hi = 0xFFFFFFFF, lo = 0xFFFFFFFF;
  for (let i = 0; i < buf.length; i++) {
    const idx = (lo ^ buf[i]) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx];
    hi = (hi >>> 8) ^ CRC64_HI[idx];
  }
  const out = Buffer.alloc(8);
  out.writeUInt32BE((hi ^ 0xFFFFFFFF) >>> 0, 0);
  out.writeUInt32BE((lo ^ 0xFFFFFFFF) >>> 0, 4);
  return out;
}

const ALGOS = {
  crc32: { len: 4, fn: (b) => crc32With(CRC32_T, b), name: 'CRC32' },
  crc32c: { len: 4, fn: (b) => crc32With(CRC32C_T, b), name: 'CRC32C' },
  crc64nvme: { len: 8, fn: crc64nvme, name: 'CRC64NVME' },
  sha1: { len: 20, fn: (b) => crypto.createHash('sha1').update(b).digest(),
    name: 'SHA1' },
  sha256: { len: 32, fn: (b) => crypto.createHash('sha256').update(b).digest(),
    name: 'SHA256' },
};

/* The one x-amz-checksum-ALGO header of a request: { algo, value } or
 * null, or { error: [code, message] }. */
function requestChecksum(headers) {
  const found = Object.keys(ALGOS).filter((a) =>
    headers['x-amz-checksum-' + a] !== undefined);
  if (found.length === 0) return null;
  if (found.length > 1) return { error: ['InvalidRequest', 'Expecting a ' +
    'single x-amz-checksum- header. Multiple checksum Types are not allowed.'] };
  const algo = found[0], value = headers['x-amz-checksum-' + algo];
  const raw = Buffer.from(value, 'base64');
  if (raw.length !== ALGOS[algo].len || raw.toString('base64') !== value)
    return { error: ['InvalidRequest', `Value for x-amz-checksum-${algo} ` +
      'header is invalid.'] };
  return { algo, value };
}

/* ---- SigV4 (for requests the proxy changes or makes) --------------------- */

function hmac(key, s) { return crypto.createHmac('sha256', key).update(s).digest(); }
function sha256hex(b) { return crypto.createHash('sha256').update(b).digest('hex'); }
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/* Sign method + path (as sent, already encoded) + query (URLSearchParams)
 * + headers (lower-case names; host included) in place. */
function sign(method, path, query, headers, body) {
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const date = now.slice(0, 8), region = process.env.AWS_REGION || 'us-east-1';
  for (const k of [...query.keys()])
    if (/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)$/i.test(k))
      query.delete(k);
  delete headers.authorization;
  headers['x-amz-date'] = now;
  headers['x-amz-content-sha256'] = sha256hex(body || Buffer.alloc(0));
  const names = Object.keys(headers).filter((h) => h === 'host' ||
    h.startsWith('x-amz-') || h === 'content-md5' || h === 'content-type' ||
    h === 'if-match' || h === 'if-none-match' || h === 'range').sort();
  const cq = [...query.entries()].map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => k + '=' + v).join('&');
  const creq = [method, path, cq,
    names.map((h) => h + ':' + String(headers[h]).trim().replace(/\s+/g, ' '))
      .join('\n') + '\n', names.join(';'), headers['x-amz-content-sha256']]
    .join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', now, scope, sha256hex(creq)].join('\n');
  let k = hmac('AWS4' + cfg.secret_key, date);
  k = hmac(hmac(hmac(k, region), 's3'), 'aws4_request');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${cfg.access_key}/` +
    `${scope}, SignedHeaders=${names.join(';')}, Signature=` +
    hmac(k, sts).toString('hex');
  stats.resigned++;
}

/* ---- what a request is --------------------------------------------------- */

function parseTarget(req, url) {
  const host = (req.headers.host || '').replace(/:\d+$/, '');
  let bucket = '', key = '';
  const parts = url.pathname.split('/');
  const vh = /^([a-z0-9][a-z0-9.-]*?)\.(localhost|s3[.-].*amazonaws\.com)$/.exec(host);
  if (vh && !/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
    bucket = vh[1];
    key = decodeURIComponent(url.pathname.slice(1));
  } else {
    bucket = decodeURIComponent(parts[1] || '');
    key = decodeURIComponent(parts.slice(2).join('/'));
  }
  const q = url.searchParams;
  let op = 'other';
  if (!bucket) op = 'service';
  else if (!key) {
    if (req.method === 'HEAD') op = 'head-bucket';
    else if (req.method === 'GET' && q.has('location')) op = 'location';
    else if (req.method === 'GET' && (q.get('list-type') === '2' ||
      ![...q.keys()].some((k) => !['prefix', 'delimiter', 'marker', 'max-keys',
        'encoding-type', 'continuation-token', 'start-after', 'fetch-owner',
        'list-type'].includes(k)))) op = 'list';
  } else if (req.method === 'GET' && q.has('uploadId')) op = 'list-parts';
  else if ((req.method === 'GET' || req.method === 'HEAD') &&
    ![...q.keys()].some((k) => !(k === 'versionId' || k === 'partNumber' ||
      k.startsWith('response-') || k.startsWith('X-Amz-'))))
    op = req.method === 'GET' ? 'get' : 'head';
  else if (req.method === 'PUT' && q.has('uploadId') && q.has('partNumber'))
    op = req.headers['x-amz-copy-source'] ? 'copy-part' : 'upload-part';
  else if (req.method === 'PUT' && ![...q.keys()].some((k) => !k.startsWith('X-Amz-')))
    op = req.headers['x-amz-copy-source'] ? 'copy' : 'put';
  else if (req.method === 'POST' && q.has('uploads')) op = 'create-mpu';
  else if (req.method === 'POST' && q.has('uploadId')) op = 'complete-mpu';
  return { bucket, key, op, id: bucket + '/' + key };
}

/* The region the request was signed for (null when unsigned). */
function signedRegion(req, url) {
  const a = req.headers.authorization || '';
  let m = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(a);
  if (m) return { region: m[1], query: false };
  m = /^[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request$/.exec(
    url.searchParams.get('X-Amz-Credential') || '');
  if (m) return { region: m[1], query: true };
  return null;
}

/* ---- ETags under SSE-KMS -------------------------------------------------- */

const fakeToReal = new Map();
function bare(etag) { return String(etag || '').replace(/^"|"$/g, ''); }
function fakeEtag(salt, real) {
  const r = bare(real);
  const m = /^([0-9a-fA-F]{32})(-\d+)?$/.exec(r);
  if (!m) return real;
  const fake = crypto.createHash('sha256').update('awsproxy-kms\0' + salt +
    '\0' + r).digest('hex').slice(0, 32) + (m[2] || '');
  fakeToReal.set(fake, r);
  stats.etags_rewritten++;
  return '"' + fake + '"';
}
function realEtag(etag) {
  const b = bare(etag);
  return fakeToReal.has(b) ? '"' + fakeToReal.get(b) + '"' : etag;
}

/* Rewrite every <Contents>'s (or <Part>'s) ETag in a listing body. */
function rewriteListing(body, bucket, t, url) {
  const urlEnc = url.searchParams.get('encoding-type') === 'url';
  let s = body.toString('utf8');
  s = s.replace(/<(Contents|Part)>([\s\S]*?)<\/\1>/g, (whole, tag, inner) => {
    let salt;
    if (tag === 'Contents') {
      const km = /<Key>([\s\S]*?)<\/Key>/.exec(inner);
      if (!km) return whole;
      const k = urlEnc ? decodeURIComponent(km[1]) : unescapeXml(km[1]);
      salt = bucket + '/' + k;
    } else {
      salt = 'part\0' + t.id + '\0' + url.searchParams.get('uploadId');
    }
    return `<${tag}>` + inner.replace(/<ETag>([\s\S]*?)<\/ETag>/, (m, e) =>
      '<ETag>' + escapeXml(fakeEtag(salt, unescapeXml(e))) + '</ETag>') +
      `</${tag}>`;
  });
  return Buffer.from(s, 'utf8');
}

function kmsHeaders(h) {
  h['x-amz-server-side-encryption'] = 'aws:kms';
  h['x-amz-server-side-encryption-aws-kms-key-id'] =
    cfg.kms_key_id.replace('REGION', mode.region || 'us-east-1');
}

/* ---- checksum memory ----------------------------------------------------- */

const objectSums = new Map(); // "bucket/key" -> { algo, value, type, etag }
const uploads = new Map();    // uploadId -> { algo, parts: Map(n -> raw) }

/* ---- request bodies ------------------------------------------------------ */

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/* Decode an aws-chunked body: { body, trailers } or null if malformed. */
function decodeChunked(buf) {
  let pos = 0, out = [];
  const trailers = {};
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = parseInt(buf.slice(pos, eol).toString().split(';')[0], 16);
    if (!Number.isFinite(size)) return null;
    pos = eol + 2;
    if (size === 0) break;
    out.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0 || eol === pos) break;
    const line = buf.slice(pos, eol).toString();
    const c = line.indexOf(':');
    if (c > 0) trailers[line.slice(0, c).trim().toLowerCase()] =
      line.slice(c + 1).trim();
    pos = eol + 2;
  }
  return { body: Buffer.concat(out), trailers };
}

/* ---- forwarding ---------------------------------------------------------- */

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/* Send a request upstream; resolves { status, headers, body }. `changed`:
 * sign it again (when the proxy has credentials). */
function upstreamRequest(method, rawUrl, headers, body, changed) {
  const up = new URL(cfg.upstream);
  const url = new URL(rawUrl, 'http://x');
  headers = Object.assign({}, headers);
  if (changed && cfg.secret_key) {
    headers.host = up.host;
    sign(method, url.pathname, url.searchParams, headers, body);
    const qs = url.searchParams.toString();
    rawUrl = url.pathname + (qs ? '?' + qs : '');
  }
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const preq = http.request({ host: up.hostname, port: up.port || 80,
      method, path: rawUrl, headers, agent }, (pres) => {
      const chunks = [];
      pres.on('data', (c) => chunks.push(c));
      pres.on('end', () => resolve({ status: pres.statusCode,
        headers: Object.assign({}, pres.headers), body: Buffer.concat(chunks) }));
      pres.on('error', reject);
    });
    preq.on('error', reject);
    stats.forwarded++;
    preq.end(body || undefined);
  });
}

/* Per-key locks for conditional writes. */
const locks = new Map();
async function withLock(id, fn) {
  const prev = locks.get(id) || Promise.resolve();
  let release;
  const mine = new Promise((r) => { release = r; });
  const chain = prev.then(() => mine);
  locks.set(id, chain);
  await prev;
  try { return await fn(); } finally {
    release();
    if (locks.get(id) === chain) locks.delete(id);
  }
}

async function headObject(t) {
  const path = '/' + encodeURIComponent(t.bucket) + '/' +
    t.key.split('/').map(uriEncode).join('/');
  const r = await upstreamRequest('HEAD', path, { host: new URL(cfg.upstream).host },
    null, true);
  return r.status === 200 ? r.headers.etag : null;
}

/* ---- the handler --------------------------------------------------------- */

async function handle(req, res) {
  const url = new URL(req.url, 'http://proxy');
  if (url.pathname.startsWith('/__')) return control(req, res, url);
  stats.requests++;
  const t = parseTarget(req, url);
  log(`${req.method} ${req.url} op=${t.op}`);

  /* Regions. */
  if (mode.region && t.bucket && t.op !== 'location') {
    const s = signedRegion(req, url);
    if (s && s.region !== mode.region) {
      stats.region_errors++;
      await readBody(req);
      const h = { 'x-amz-bucket-region': mode.region };
      if (cfg.redirect) return sendError(req, res, 301, 'PermanentRedirect',
        'The bucket you are attempting to access must be addressed using ' +
        'the specified endpoint. Please send all future requests to this ' +
        'endpoint.', { Endpoint: `${t.bucket}.s3.${mode.region}.amazonaws.com`,
          Bucket: t.bucket }, h);
      if (s.query) return sendError(req, res, 400,
        'AuthorizationQueryParametersError', 'Error parsing the X-Amz-' +
        `Credential parameter; the region '${s.region}' is wrong; expecting ` +
        `'${mode.region}'`, { Region: mode.region }, h);
      return sendError(req, res, 400, 'AuthorizationHeaderMalformed',
        `The authorization header is malformed; the region '${s.region}' is ` +
        `wrong; expecting '${mode.region}'`, { Region: mode.region }, h);
    }
  }
  if (mode.region && t.op === 'location') {
    await readBody(req);
    const b = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      (mode.region === 'us-east-1' ? '' : mode.region) + '</LocationConstraint>');
    res.writeHead(200, { 'Content-Type': 'application/xml',
      'Content-Length': b.length, 'x-amz-request-id': requestId() });
    return res.end(b);
  }

  /* The request as it goes upstream. */
  let body = null, changed = false;
  const headers = Object.assign({}, req.headers);
  if (req.method === 'PUT' || req.method === 'POST') {
    body = await readBody(req);
    const enc = headers['content-encoding'] || '';
    if (/aws-chunked/.test(enc) ||
        /^STREAMING-/.test(headers['x-amz-content-sha256'] || '')) {
      const d = decodeChunked(body);
      if (!d) return sendError(req, res, 400, 'IncompleteBody',
        'The request body is not valid aws-chunked encoding.');
      body = d.body;
      Object.assign(headers, d.trailers);
      const rest = enc.split(',').map((x) => x.trim())
        .filter((x) => x && x !== 'aws-chunked');
      if (rest.length) headers['content-encoding'] = rest.join(',');
      else delete headers['content-encoding'];
      delete headers['x-amz-decoded-content-length'];
      delete headers['x-amz-trailer'];
      delete headers['transfer-encoding'];
      changed = true;
      stats.chunked_decoded++;
    }
    const cmd5 = headers['content-md5'];
    if (cmd5 !== undefined &&
        crypto.createHash('md5').update(body).digest('base64') !== cmd5) {
      stats.bad_digest++;
      return sendError(req, res, 400, 'BadDigest',
        'The Content-MD5 you specified did not match what we received.');
    }
  } else {
    await readBody(req);
  }
  for (const h of ['if-match', 'if-none-match']) {
    if (mode.sse_kms && headers[h] && headers[h] !== '*' &&
        realEtag(headers[h]) !== headers[h]) {
      headers[h] = realEtag(headers[h]);
      changed = true;
    }
  }

  /* Checksums of a body. */
  let sum = null;
  if (mode.checksums && (t.op === 'put' || t.op === 'upload-part')) {
    sum = requestChecksum(headers);
    if (sum && sum.error) return sendError(req, res, 400, ...sum.error);
    if (sum) {
      const got = ALGOS[sum.algo].fn(body).toString('base64');
      if (got !== sum.value) {
        stats.bad_digest++;
        return sendError(req, res, 400, 'BadDigest', `The ${ALGOS[sum.algo].name}` +
          ' you specified did not match the calculated checksum.');
      }
    } else if (t.op === 'put' && cfg.default_checksum !== 'none') {
      sum = { algo: cfg.default_checksum,
        value: ALGOS[cfg.default_checksum].fn(body).toString('base64') };
    }
  }
  if (mode.sse_kms && t.op === 'complete-mpu' && body) {
    const s = body.toString('utf8').replace(/<ETag>([\s\S]*?)<\/ETag>/g,
      (m, e) => '<ETag>' + escapeXml(realEtag(unescapeXml(e))) + '</ETag>');
    if (s !== body.toString('utf8')) { body = Buffer.from(s); changed = true; }
  }

  const go = async () => {
    if (mode.conditional && (t.op === 'put' || t.op === 'complete-mpu') &&
        (headers['if-none-match'] || headers['if-match'])) {
      const cur = await headObject(t);
      const inm = headers['if-none-match'], im = headers['if-match'];
      const fail = (inm === '*' && cur) ||
        (im && (!cur || bare(realEtag(im)) !== bare(cur) && im !== '*'));
      if (fail) {
        stats.precondition_failed++;
        sendError(req, res, 412, 'PreconditionFailed', 'At least one of the ' +
          'pre-conditions you specified did not hold',
          { Condition: inm ? 'If-None-Match' : 'If-Match' });
        return null;
      }
    }
    const h = Object.assign({}, headers);
    let ch = changed;
    if (mode.conditional && (h['if-none-match'] || h['if-match'])) {
      /* Decided here, under the lock: RGW would judge again, and its
       * If-Match on PUT wants the ETag without quotes. */
      delete h['if-none-match']; delete h['if-match'];
      ch = true;
    }
    const r = await upstreamRequest(req.method, req.url, h, body, ch);
    if (t.op === 'complete-mpu' && r.status === 200 &&
        /<ETag>\s*<\/ETag>/.test(r.body.toString())) {
      /* RGW 16 answers Complete with an empty ETag; AWS gives the
       * object's. */
      const etag = await headObject(t);
      if (etag) r.body = Buffer.from(r.body.toString().replace(
        /<ETag>\s*<\/ETag>/, '<ETag>' + escapeXml(etag) + '</ETag>'));
    }
    return r;
  };
  let r;
  try {
    r = mode.conditional && (t.op === 'put' || t.op === 'complete-mpu')
      ? await withLock(t.id, go) : await go();
  } catch (e) {
    log('upstream error: ' + e.message);
    if (!res.headersSent) sendError(req, res, 502, 'InternalError',
      'awsproxy: upstream ' + e.message);
    return;
  }
  if (!r) return;
  respond(req, res, url, t, r, sum, headers);
}

/* Shape an upstream answer as AWS would give it. */
function respond(req, res, url, t, r, sum, headers) {
  const h = r.headers;
  let body = r.body;
  const ok = r.status >= 200 && r.status < 300;
  if (ok && mode.checksums) {
    if (t.op === 'create-mpu' && headers['x-amz-checksum-algorithm']) {
      const id = (/<UploadId>([^<]+)<\/UploadId>/.exec(body.toString()) || [])[1];
      const algo = headers['x-amz-checksum-algorithm'].toLowerCase();
      if (id && ALGOS[algo]) uploads.set(id, { algo, parts: new Map() });
      if (ALGOS[algo]) h['x-amz-checksum-algorithm'] = ALGOS[algo].name;
    }
    if (t.op === 'upload-part' && sum) {
      const u = uploads.get(url.searchParams.get('uploadId'));
      if (u && u.algo === sum.algo)
        u.parts.set(Number(url.searchParams.get('partNumber')),
          Buffer.from(sum.value, 'base64'));
      h['x-amz-checksum-' + sum.algo] = sum.value;
    }
    if (t.op === 'put' && sum) {
      objectSums.set(t.id, { algo: sum.algo, value: sum.value,
        type: 'FULL_OBJECT', etag: bare(h.etag) });
      stats.checksums_stored++;
      h['x-amz-checksum-' + sum.algo] = sum.value;
      h['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    if (t.op === 'complete-mpu') {
      const id = url.searchParams.get('uploadId');
      const u = uploads.get(id);
      const etag = (/<ETag>([\s\S]*?)<\/ETag>/.exec(body.toString()) || [])[1];
      if (u && u.parts.size > 0 && etag) {
        const raws = [...u.parts.keys()].sort((a, b) => a - b)
          .map((n) => u.parts.get(n));
        const value = ALGOS[u.algo].fn(Buffer.concat(raws)).toString('base64') +
          '-' + raws.length;
        objectSums.set(t.id, { algo: u.algo, value, type: 'COMPOSITE',
          etag: bare(unescapeXml(etag)) });
        stats.checksums_stored++;
      } else {
        objectSums.delete(t.id);
      }
      uploads.delete(id);
    }
    if ((t.op === 'get' || t.op === 'head') && r.status === 200 &&
        /^enabled$/i.test(headers['x-amz-checksum-mode'] || '') &&
        !headers.range && !url.searchParams.has('partNumber')) {
      const s = objectSums.get(t.id);
      if (s && s.etag === bare(h.etag)) {
        h['x-amz-checksum-' + s.algo] = s.value;
        h['x-amz-checksum-type'] = s.type;
        stats.checksums_returned++;
      }
    }
  }
  if (mode.sse_kms) {
    const salt = t.id;
    if (['get', 'head', 'put', 'create-mpu', 'upload-part', 'complete-mpu',
      'copy'].includes(t.op) && (ok || r.status === 304 || r.status === 206))
      kmsHeaders(h);
    if (h.etag && ['get', 'head', 'put', 'copy'].includes(t.op))
      h.etag = fakeEtag(salt, h.etag);
    if (h.etag && t.op === 'upload-part')
      h.etag = fakeEtag('part\0' + t.id + '\0' + url.searchParams.get('uploadId'),
        h.etag);
    if (ok && ['complete-mpu', 'copy', 'copy-part'].includes(t.op)) {
      const salt2 = t.op === 'copy-part' ? 'part\0' + t.id + '\0' +
        url.searchParams.get('uploadId') : salt;
      body = Buffer.from(body.toString('utf8').replace(/<ETag>([\s\S]*?)<\/ETag>/,
        (m, e) => '<ETag>' + escapeXml(fakeEtag(salt2, unescapeXml(e))) +
          '</ETag>'));
    }
    if (ok && (t.op === 'list' || t.op === 'list-parts'))
      body = rewriteListing(body, t.bucket, t, url);
  }
  if (mode.region && t.op === 'head-bucket') h['x-amz-bucket-region'] = mode.region;
  if (req.method !== 'HEAD' && h['content-length'] !== undefined)
    h['content-length'] = String(body.length);
  delete h['transfer-encoding'];
  res.writeHead(r.status, h);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function control(req, res, url) {
  const reply = (obj) => {
    const b = Buffer.from(JSON.stringify(obj) + '\n');
    res.writeHead(200, { 'Content-Type': 'application/json',
      'Content-Length': b.length });
    res.end(b);
  };
  readBody(req).then((b) => {
    if (url.pathname === '/__stats') return reply(stats);
    if (url.pathname === '/__reset') { zeroStats(); return reply(stats); }
    if (url.pathname === '/__config' && req.method === 'POST') {
      let obj;
      try {
        obj = JSON.parse(b.toString('utf8'));
        const next = Object.assign({}, cfg);
        for (const [k, v] of Object.entries(obj)) {
          const key = k.replace(/-/g, '_');
          if (!(key in cfg)) throw new Error(`unknown setting '${k}'`);
          next[key] = v;
        }
        mode = parseModes(next.modes);
        Object.assign(cfg, next);
      } catch (e) { res.writeHead(400); return res.end(e.message + '\n'); }
      return reply(Object.assign({}, cfg, { secret_key: undefined }));
    }
    res.writeHead(404); res.end('awsproxy: no such control endpoint\n');
  });
}

parseArgs(process.argv.slice(2));
if (cfg.log) logStream = fs.createWriteStream(cfg.log, { flags: 'a' });
const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    log('error: ' + (e && e.stack));
    if (!res.headersSent) sendError(req, res, 500, 'InternalError',
      'awsproxy: ' + e.message);
    else res.destroy();
  });
});
server.keepAliveTimeout = 5000;
server.on('clientError', (e, sock) => { sock.destroy(); });
server.listen(cfg.port, '127.0.0.1', () => {
  const port = server.address().port;
  if (cfg.port_file) fs.writeFileSync(cfg.port_file, String(port) + '\n');
  process.stdout.write(`awsproxy listening on ${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (cfg.stats_file) fs.writeFileSync(cfg.stats_file, JSON.stringify(stats) + '\n');
    process.exit(0);
  });
}
