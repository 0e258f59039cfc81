'use strict';
// JWTs minted by Node's own crypto module (no npm package), for test_auth_node.py: an
// implementation of JWS signing independent of PyJWT and of pylon's OpenSSL calls.
//   node node_jwt.js < request.json > answer.json
// request: {"secret": "<HMAC secret>", "tokens": [{"alg": "ES256", "kid": "p256" | null,
//           "payload": {...}}, ...]}
// answer:  {"keys": {"hmac": {"jwk"}, "rsa" | "p256" | "p384" | "ed25519": {"pem", "jwk"}},
//           "tokens": ["<compact JWS>", ...]}
// The key pairs are generated here, fresh on every run; only their public halves (and the
// HMAC secret the caller chose) leave the process. Exits 1 with a message on stderr on error.
const crypto = require('crypto');

// RFC 7518 §3.1 and RFC 8037 §3.1: the key type and the digest of every "alg".
const ALGORITHMS = {
  HS256: {key: 'hmac', hash: 'sha256'}, HS384: {key: 'hmac', hash: 'sha384'},
  HS512: {key: 'hmac', hash: 'sha512'},
  RS256: {key: 'rsa', hash: 'sha256'}, RS384: {key: 'rsa', hash: 'sha384'},
  RS512: {key: 'rsa', hash: 'sha512'},
  PS256: {key: 'rsa', hash: 'sha256', pss: 32}, PS384: {key: 'rsa', hash: 'sha384', pss: 48},
  PS512: {key: 'rsa', hash: 'sha512', pss: 64},
  ES256: {key: 'p256', hash: 'sha256'}, ES384: {key: 'p384', hash: 'sha384'},
  EdDSA: {key: 'ed25519', hash: null},
};

function generate(type) {
  switch (type) {
    case 'rsa': return crypto.generateKeyPairSync('rsa', {modulusLength: 2048});
    case 'p256': return crypto.generateKeyPairSync('ec', {namedCurve: 'P-256'});
    case 'p384': return crypto.generateKeyPairSync('ec', {namedCurve: 'P-384'});
    case 'ed25519': return crypto.generateKeyPairSync('ed25519');
    default: throw new Error('no key type ' + type);
  }
}

function base64url(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

function sign(algorithm, keys, input) {
  const how = ALGORITHMS[algorithm];
  if (how.key === 'hmac') return crypto.createHmac(how.hash, keys.hmac).update(input).digest();
  const key = keys[how.key].privateKey;
  // RFC 7518 §3.5: PSS with MGF1 of the same hash and a salt as long as the hash.
  if (how.pss) {
    return crypto.sign(how.hash, Buffer.from(input),
                       {key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: how.pss});
  }
  // RFC 7518 §3.4: ECDSA signatures are R || S, each the curve's size, not DER.
  if (how.key === 'p256' || how.key === 'p384')
    return crypto.sign(how.hash, Buffer.from(input), {key, dsaEncoding: 'ieee-p1363'});
  return crypto.sign(how.hash, Buffer.from(input), key);  // RSA PKCS #1 v1.5; Ed25519 (null)
}

function main(request) {
  const keys = {hmac: Buffer.from(request.secret, 'utf8')};
  const answer = {keys: {hmac: {jwk: crypto.createSecretKey(keys.hmac).export({format: 'jwk'})}},
                  tokens: []};
  for (const {alg, kid, payload} of request.tokens) {
    const how = ALGORITHMS[alg];
    if (!how) throw new Error('unknown alg ' + alg);
    if (!keys[how.key]) {
      keys[how.key] = generate(how.key);
      const publicKey = keys[how.key].publicKey;
      answer.keys[how.key] = {pem: publicKey.export({type: 'spki', format: 'pem'}),
                              jwk: publicKey.export({format: 'jwk'})};
    }
    const header = kid ? {alg, kid, typ: 'JWT'} : {alg, typ: 'JWT'};
    const input = base64url(JSON.stringify(header)) + '.' + base64url(JSON.stringify(payload));
    answer.tokens.push(input + '.' + base64url(sign(alg, keys, input)));
  }
  return answer;
}

let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  try {
    process.stdout.write(JSON.stringify(main(JSON.parse(text))));
  } catch (error) {
    console.error('node_jwt.js: ' + error.message);
    process.exit(1);
  }
});
