'use strict';
// Node `ws` client with permessage-deflate, driven by test_deflate_interop.py.
//   node node_ws_deflate.js URL OPTIONS_JSON CASES_JSON
// OPTIONS_JSON is the `perMessageDeflate` option of the client (true, false or an object);
// CASES_JSON a list of [kind, size, pieces] echoed one after another on one connection, kind being
// text (compressible, multi-byte characters), binary (compressible) or random (incompressible);
// pieces > 1 sends the message as that many fragments.
// Prints one line "OK <json>" (the negotiated extension as the client saw it) and exits 0 on
// success; prints the failure and exits 1.
const WebSocket = require('ws');
const crypto = require('crypto');

const [url, optionsJson, casesJson] = process.argv.slice(2);
const TIMEOUT_MS = 150000;

function fail(message) {
  console.error('FAIL ' + message);
  process.exit(1);
}
setTimeout(() => fail('timed out'), TIMEOUT_MS).unref();

function makeText(n) {
  // 1+1+1+2+3+4 = 12 bytes per unit; cut to exactly n bytes on a character boundary.
  const unit = 'abc\u00b5\u20ac\u{1f600}';
  const text = unit.repeat(Math.floor(n / 12)) + 'x'.repeat(n % 12);
  if (Buffer.byteLength(text) !== n) fail('bad text size');
  return text;
}

function makeBinary(n) {
  const seed = crypto.createHash('sha256').update('seed').digest();
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 32) seed.copy(out, i, 0, Math.min(32, n - i));
  return out;
}

const options = JSON.parse(optionsJson);
const cases = JSON.parse(casesJson);
const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, perMessageDeflate: options });
let header = null;
ws.on('upgrade', (response) => { header = response.headers['sec-websocket-extensions'] || null; });
ws.on('error', (err) => fail('error event: ' + err.message));
let done = false;
ws.on('close', (code, reason) => {
  if (!done) fail('unexpected close ' + code + ' ' + reason);
  if (code !== 1000) fail('close code ' + code);
  const deflate = ws._extensions['permessage-deflate'];
  console.log('OK ' + JSON.stringify({ extensions: ws.extensions, header, params: deflate ? deflate.params : null }));
  process.exit(0);
});

function echo(index) {
  if (index === cases.length) {
    done = true;
    ws.close(1000);
    return;
  }
  const [kind, size, pieces] = cases[index];
  const binary = kind !== 'text';
  const message = kind === 'text' ? makeText(size) : kind === 'binary' ? makeBinary(size) : crypto.randomBytes(size);
  const what = kind + ' ' + size + ' in ' + pieces;
  ws.once('message', (data, isBinary) => {
    if (isBinary !== binary) fail(what + ': isBinary ' + isBinary);
    const expected = binary ? message : Buffer.from(message);
    if (!Buffer.isBuffer(data) || !data.equals(expected)) fail(what + ': echo differs: got ' + data.length + ' bytes, expected ' + expected.length);
    echo(index + 1);
  });
  if (pieces <= 1) {
    ws.send(message, { binary, compress: true });
  } else if (binary) {
    for (let i = 0; i < pieces; i++) {
      ws.send(message.subarray(Math.floor(i * size / pieces), Math.floor((i + 1) * size / pieces)),
              { binary: true, fin: i === pieces - 1, compress: true });
    }
  } else {
    const chars = Array.from(message);  // split on code points so every piece is a string
    for (let i = 0; i < pieces; i++) {
      const piece = chars.slice(Math.floor(i * chars.length / pieces), Math.floor((i + 1) * chars.length / pieces)).join('');
      ws.send(piece, { binary: false, fin: i === pieces - 1, compress: true });
    }
  }
}

ws.on('open', () => echo(0));
