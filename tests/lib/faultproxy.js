#!/usr/bin/env node
/*
 * tests/lib/faultproxy.js -- a seeded fault-injecting HTTP proxy that sits
 * between tdm and s3rver (or any S3-compatible endpoint) for the
 * reliability tests. No npm packages; Node 20's http module only.
 *
 *   node tests/lib/faultproxy.js --upstream http://127.0.0.1:PORT \
 *     [--seed N] [--p503 0.10] [--p500 0] [--reset 0.03] [--truncate 0.03] \
 *     [--corrupt 0.01] [--latency-ms 0] [--latency-p 0] [--hang 0] \
 *     [--mode MODE] [--methods GET,PUT] [--inject-keys FILE] \
 *     [--port-file FILE] [--stats-file FILE] [--log FILE]
 *
 * Listens on 127.0.0.1 on a free port (written to --port-file and printed
 * as "faultproxy listening on PORT"). Every request to the upstream rolls
 * once on a seeded PRNG (mulberry32) and gets at most one fault:
 *
 *   p503      503 SlowDown XML error, request not forwarded
 *   p500      500 InternalError XML error, request not forwarded
 *   reset     connection reset: a GET's response is cut mid-body and the
 *             socket destroyed; a request with a body is dropped while it
 *             is being received (never forwarded)
 *   truncate  response with its full Content-Length but only part of the
 *             body, then the connection is closed (GET only)
 *   corrupt   one byte flipped in a GET object body (headers and ETag
 *             untouched) -- listings are never corrupted
 *   latency   latency-ms added before forwarding, with probability
 *             latency-p (independent of the other faults); the stats'
 *             latency_union_ms is the time covered by at least one
 *             delay, so latency_union_ms / latency-ms is the number of
 *             delays a client waited for one after another (its round
 *             trips on the critical path), whatever the CPU load
 *   hang      the request is accepted and never answered
 *
 * --mode sets a fixed behaviour for every (non-control) request instead:
 *   pass          forward everything (the default)
 *   auth403       403 SignatureDoesNotMatch XML
 *   region400     400 AuthorizationHeaderMalformed (wrong region) XML
 *   html502       502 with an HTML body (not XML)
 *   text500       500 with a plain-text body (not XML)
 *   garbage-list  listings answered with a 200 that is not XML
 *   hang          never answer
 *
 * --inject-keys FILE: a JSON array of { key, size, etag } added to every
 * ListObjectsV2 response whose prefix covers them (hostile keys: "../",
 * absolute, 2 KB, outside the prefix...). A key may carry "\u0000"; keys
 * are XML-escaped, or URL-encoded when the request asked encoding-type=url.
 *
 * Request bodies are checked as S3 checks them (s3rver does not): a
 * request body is buffered whole before it is forwarded; a client that
 * disconnects mid-body has nothing stored (s3rver would store the partial
 * body as the object), a body shorter or longer than its Content-Length is
 * refused with 400 IncompleteBody, and a body whose MD5 differs from its
 * Content-MD5 with 400 BadDigest. --strict 0 turns this off (bodies are
 * streamed through as they come).
 *
 * Control endpoints (not forwarded, not counted as requests):
 *   GET  /__stats    JSON counts of requests and of every fault injected
 *   POST /__config   JSON object merged into the settings (rates, mode,
 *                    seed: re-seeds the PRNG), answers the new settings
 *   POST /__reset    zero the counters
 * On SIGTERM/SIGINT the stats are written to --stats-file (when given).
 */
'use strict';
const http = require('http');
const fs = require('fs');
const { URL } = require('url');

/* Settings: defaults, then command line. */
const cfg = {
  upstream: process.env.AWS_ENDPOINT_URL || '',
  seed: 1, p503: 0, p500: 0, reset: 0, truncate: 0, corrupt: 0,
  latency_ms: 0, latency_p: 0, hang: 0, mode: 'pass', methods: '',
  inject_keys: '', port_file: '', stats_file: '', log: '', port: 0,
  strict: 1,
};

function parseArgs(argv) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) die(`faultproxy: unexpected argument '${a}'`);
    const key = a.slice(2).replace(/-/g, '_');
    if (!(key in cfg)) die(`faultproxy: unknown option '${a}'`);
    const v = argv[++i];
    if (v === undefined) die(`faultproxy: ${a} needs a value`);
    cfg[key] = typeof cfg[key] === 'number' ? Number(v) : v;
    if (typeof cfg[key] === 'number' && !Number.isFinite(cfg[key]))
      die(`faultproxy: ${a} needs a number, got '${v}'`);
  }
  if (!cfg.upstream) die('faultproxy: --upstream (or AWS_ENDPOINT_URL) needed');
}

function die(msg) { process.stderr.write(msg + '\n'); process.exit(2); }

/* mulberry32: small, seeded, reproducible. */
let prngState = 0;
function reseed(seed) { prngState = (Number(seed) >>> 0) || 1; }
function rand() {
  prngState = (prngState + 0x6D2B79F5) >>> 0;
  let t = prngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const stats = {};
function zeroStats() {
  for (const k of ['requests', 'forwarded', 'p503', 'p500', 'reset',
    'truncate', 'corrupt', 'latency', 'hang', 'mode', 'injected_keys',
    'upstream_errors', 'client_aborts', 'bad_digest', 'incomplete_body'])
    stats[k] = 0;
  stats.by_method = {};
  stats.latency_union_ms = 0;
  delayEnd = 0;
}
/* Delays start in arrival order and are all latency-ms long, so each new
 * one adds to the union only what reaches past the previous end. */
let delayEnd = 0;
function addDelay(ms) {
  const s = Date.now(), e = s + ms;
  if (e > delayEnd) {
    stats.latency_union_ms += e - Math.max(s, delayEnd);
    delayEnd = e;
  }
}
zeroStats();

let logStream = null;
function log(line) { if (logStream) logStream.write(line + '\n'); }

function xmlError(code, message, status) {
  return {
    status, type: 'application/xml',
    body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + code +
      '</Code><Message>' + message + '</Message><RequestId>faultproxy' +
      '</RequestId></Error>',
  };
}

function modeResponse(mode) {
  switch (mode) {
    case 'auth403': return xmlError('SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature ' +
      'you provided. Check your key and signing method.', 403);
    case 'region400': return xmlError('AuthorizationHeaderMalformed',
      "The authorization header is malformed; the region 'us-west-1' is " +
      "wrong; expecting 'eu-central-1'", 400);
    case 'html502': return { status: 502, type: 'text/html',
      body: '<html><head><title>502 Bad Gateway</title></head><body>' +
        '<h1>Bad Gateway</h1></body></html>' };
    case 'text500': return { status: 500, type: 'text/plain',
      body: 'upstream exploded: not xml at all\n' };
    default: return null;
  }
}

function send(res, r) {
  const body = Buffer.from(r.body);
  res.writeHead(r.status, { 'Content-Type': r.type,
    'Content-Length': body.length, 'x-amz-request-id': 'faultproxy' });
  res.end(body);
}

/* Drain a request body (so a keep-alive connection stays usable), then
 * call fn. */
function drain(req, fn) {
  req.on('data', () => {});
  req.on('end', fn);
  req.on('error', () => {});
}

function isListing(req, url) {
  return req.method === 'GET' && url.searchParams.get('list-type') === '2';
}
function isObjectGet(req, url) {
  if (req.method !== 'GET' || isListing(req, url)) return false;
  /* path-style: /bucket/key... */
  const parts = url.pathname.split('/').filter(Boolean);
  return parts.length >= 2 && url.search === '';
}

function escapeXml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;',
    '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c])
    .replace(/\u0000/g, '&#0;');
}

/* Add the --inject-keys objects under the request's prefix to a
 * ListObjectsV2 body; returns the new body. */
function injectKeys(body, url) {
  if (!cfg.inject_keys) return body;
  let list;
  try { list = JSON.parse(fs.readFileSync(cfg.inject_keys, 'utf8')); }
  catch (e) { log('inject-keys: ' + e.message); return body; }
  const prefix = url.searchParams.get('prefix') || '';
  const urlEnc = url.searchParams.get('encoding-type') === 'url';
  let extra = '', n = 0;
  for (const o of list) {
    if (!o.always && !o.key.startsWith(prefix)) continue;
    const key = urlEnc ? encodeURIComponent(o.key).replace(/%2F/g, '/')
      : escapeXml(o.key);
    extra += '<Contents><Key>' + key + '</Key><LastModified>' +
      '2025-10-17T15:57:00.000Z</LastModified><ETag>&quot;' +
      (o.etag || 'd41d8cd98f00b204e9800998ecf8427e') + '&quot;</ETag><Size>' +
      (o.size || 0) + '</Size><StorageClass>STANDARD</StorageClass>' +
      '</Contents>';
    n++;
  }
  if (!n) return body;
  stats.injected_keys += n;
  let s = body.toString('utf8');
  const at = s.indexOf('<CommonPrefixes>') >= 0 ?
    s.indexOf('<CommonPrefixes>') : s.lastIndexOf('</ListBucketResult>');
  if (at < 0) return body;
  s = s.slice(0, at) + extra + s.slice(at);
  s = s.replace(/<KeyCount>(\d+)<\/KeyCount>/,
    (m, k) => '<KeyCount>' + (Number(k) + n) + '</KeyCount>');
  return Buffer.from(s, 'utf8');
}

const upstream = () => new URL(cfg.upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/* Forward `req` to the upstream; `fault` is null, 'reset', 'truncate' or
 * 'corrupt' and applies to the response body. */
function forward(req, res, url, fault) {
  const up = upstream();
  /* The client's Host header goes upstream unchanged: it is signed, and
   * RGW checks signatures (s3rver and RGW address by path either way). */
  const headers = Object.assign({}, req.headers);
  const preq = http.request({
    host: up.hostname, port: up.port || 80, method: req.method,
    path: req.url, headers, agent,
  }, (pres) => {
    const chunks = [];
    pres.on('data', (c) => chunks.push(c));
    pres.on('end', () => {
      let body = Buffer.concat(chunks);
      const h = Object.assign({}, pres.headers);
      if (isListing(req, url) && pres.statusCode === 200) {
        if (cfg.mode === 'garbage-list') {
          stats.mode++;
          body = Buffer.from('this is not a listing {"json": true}\n');
        } else {
          body = injectKeys(body, url);
        }
        h['content-length'] = String(body.length);
      }
      const withBody = req.method !== 'HEAD' && body.length > 1;
      if (fault === 'corrupt' && withBody && pres.statusCode === 200) {
        const i = Math.floor(rand() * body.length);
        body[i] ^= 0x20 | (1 + Math.floor(rand() * 15));
        stats.corrupt++;
        log(`corrupt ${req.method} ${req.url} byte ${i}`);
      } else if ((fault === 'reset' || fault === 'truncate') && withBody) {
        stats[fault]++;
        const cut = 1 + Math.floor(rand() * (body.length - 1));
        log(`${fault} ${req.method} ${req.url} after ${cut}/${body.length}`);
        res.writeHead(pres.statusCode, h);
        res.write(body.subarray(0, cut), () => {
          if (fault === 'reset') res.socket.resetAndDestroy ?
            res.socket.resetAndDestroy() : res.socket.destroy();
          else res.socket.end();
        });
        return;
      }
      res.writeHead(pres.statusCode, h);
      res.end(body);
    });
    pres.on('error', () => { res.destroy(); });
  });
  preq.on('error', (e) => {
    if (preq.dropped) return;
    stats.upstream_errors++;
    log('upstream error: ' + e.message);
    if (!res.headersSent) send(res, xmlError('InternalError',
      'faultproxy: upstream ' + e.message, 502));
    else res.destroy();
  });
  if (!cfg.strict || req.method === 'GET' || req.method === 'HEAD') {
    stats.forwarded++;
    req.pipe(preq);
    return;
  }
  /* S3's checks on a request body before anything is stored. */
  const chunks = [];
  let ended = false;
  req.on('data', (c) => chunks.push(c));
  req.on('error', () => {});
  req.on('close', () => {
    if (!ended) { stats.client_aborts++; log(`client abort ${req.url}`);
      preq.dropped = true; preq.destroy(); }
  });
  req.on('end', () => {
    ended = true;
    const body = Buffer.concat(chunks);
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) !== body.length) {
      stats.incomplete_body++;
      preq.dropped = true; preq.destroy();
      return send(res, xmlError('IncompleteBody', 'You did not provide the ' +
        'number of bytes specified by the Content-Length HTTP header', 400));
    }
    const cmd5 = req.headers['content-md5'];
    if (cmd5 !== undefined && require('crypto').createHash('md5')
      .update(body).digest('base64') !== cmd5) {
      stats.bad_digest++;
      preq.dropped = true; preq.destroy();
      return send(res, xmlError('BadDigest', 'The Content-MD5 you specified ' +
        'did not match what we received.', 400));
    }
    stats.forwarded++;
    preq.end(body);
  });
}

function handle(req, res) {
  const url = new URL(req.url, 'http://proxy');
  if (url.pathname.startsWith('/__')) return control(req, res, url);
  stats.requests++;
  stats.by_method[req.method] = (stats.by_method[req.method] || 0) + 1;

  if (cfg.mode === 'hang') { stats.hang++; stats.mode++; req.resume(); return; }
  const fixed = modeResponse(cfg.mode);
  if (fixed) { stats.mode++; return drain(req, () => send(res, fixed)); }

  const eligible = !cfg.methods ||
    cfg.methods.split(',').includes(req.method);
  let fault = null;
  if (eligible) {
    const r = rand();
    const table = [['p503', cfg.p503], ['p500', cfg.p500],
      ['reset', cfg.reset], ['truncate', cfg.truncate],
      ['corrupt', cfg.corrupt], ['hang', cfg.hang]];
    let acc = 0;
    for (const [name, p] of table) {
      acc += p;
      if (r < acc) { fault = name; break; }
    }
  }
  /* Faults on the response body only make sense where there is one. */
  if (fault === 'truncate' && req.method !== 'GET') fault = null;
  if (fault === 'corrupt' && !isObjectGet(req, url)) fault = null;

  const go = () => {
    switch (fault) {
      case 'p503':
        stats.p503++; log(`503 ${req.method} ${req.url}`);
        return drain(req, () => send(res, xmlError('SlowDown',
          'Please reduce your request rate.', 503)));
      case 'p500':
        stats.p500++; log(`500 ${req.method} ${req.url}`);
        return drain(req, () => send(res, xmlError('InternalError',
          'We encountered an internal error. Please try again.', 500)));
      case 'hang':
        stats.hang++; log(`hang ${req.method} ${req.url}`);
        req.resume(); return;
      case 'reset':
        if (req.method !== 'GET' && req.method !== 'HEAD' &&
            req.method !== 'DELETE') {
          /* Drop the request while its body is arriving. */
          stats.reset++; log(`reset ${req.method} ${req.url} (request)`);
          let seen = 0;
          req.on('data', (c) => {
            seen += c.length;
            if (seen > 0) req.socket.destroy();
          });
          req.on('end', () => req.socket.destroy());
          req.on('error', () => {});
          return;
        }
        return forward(req, res, url, 'reset');
      default:
        return forward(req, res, url, fault);
    }
  };
  if (cfg.latency_ms > 0 && rand() < cfg.latency_p) {
    stats.latency++;
    addDelay(cfg.latency_ms);
    setTimeout(go, cfg.latency_ms);
  } else {
    go();
  }
}

function control(req, res, url) {
  const reply = (obj) => {
    const b = Buffer.from(JSON.stringify(obj) + '\n');
    res.writeHead(200, { 'Content-Type': 'application/json',
      'Content-Length': b.length });
    res.end(b);
  };
  if (url.pathname === '/__stats') return drain(req, () => reply(stats));
  if (url.pathname === '/__reset') {
    return drain(req, () => { zeroStats(); reply(stats); });
  }
  if (url.pathname === '/__config' && req.method === 'POST') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let obj;
      try { obj = JSON.parse(Buffer.concat(chunks).toString('utf8')); }
      catch (e) { res.writeHead(400); return res.end(e.message + '\n'); }
      for (const [k, v] of Object.entries(obj)) {
        const key = k.replace(/-/g, '_');
        if (key in cfg) cfg[key] = v;
      }
      if ('seed' in obj) reseed(cfg.seed);
      reply(cfg);
    });
    return;
  }
  res.writeHead(404); res.end('faultproxy: no such control endpoint\n');
}

function writeStats() {
  if (cfg.stats_file) {
    fs.writeFileSync(cfg.stats_file, JSON.stringify(stats) + '\n');
  }
}

parseArgs(process.argv.slice(2));
reseed(cfg.seed);
if (cfg.log) logStream = fs.createWriteStream(cfg.log, { flags: 'a' });
const server = http.createServer(handle);
server.keepAliveTimeout = 5000;
server.on('clientError', (e, sock) => { sock.destroy(); });
server.listen(cfg.port, '127.0.0.1', () => {
  const port = server.address().port;
  if (cfg.port_file) fs.writeFileSync(cfg.port_file, String(port) + '\n');
  process.stdout.write(`faultproxy listening on ${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { writeStats(); process.exit(0); });
}
