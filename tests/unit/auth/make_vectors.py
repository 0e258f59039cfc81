#!/usr/bin/python3
"""Mints the JWT test vectors of tests/unit/auth with an implementation that is not pylon's.

    /usr/bin/python3 tests/unit/auth/make_vectors.py

Writes tests/unit/auth/vectors.json (keys as PEM and JWK, tokens with fixed iat/nbf/exp around
NOW) and the seeds of tests/fuzz/corpus/jwt/. Tokens come from PyJWT (Debian python3-jwt 2.6,
python3-cryptography); the hostile ones PyJWT refuses to make (HS256 keyed with a PEM text, a DER
ECDSA signature, invalid JSON with a valid MAC) are built here with hmac and cryptography. Keys
are fresh on every run: the vectors are committed, and jwt_test.cpp reads them with a fixed now.
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib

import cryptography
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HERE = pathlib.Path(__file__).resolve().parent
FUZZ_CORPUS = HERE.parent.parent / "fuzz" / "corpus" / "jwt"
NOW = 1700000000

# The fuzz target's fixed keys (tests/fuzz/jwt_fuzz.cpp holds the same values).
FUZZ_SECRET = b"pylon-fuzz-hmac-secret-0123456789abcdef"
FUZZ_EC_SCALAR = 0x1D1E5E7A5EC2E7C0FFEE5EED0F1A7A55A11CE0B0B0DEADBEEF0123456789ABCD


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jwk_of(algorithm_class, key, kid, **extra) -> dict:
    jwk = json.loads(algorithm_class.to_jwk(key))
    jwk["kid"] = kid
    jwk.update(extra)
    return jwk


def manual_token(header: dict, payload: bytes, secret: bytes, digest=hashlib.sha256) -> str:
    """header.payload signed with HMAC by the standard library (payload given as raw bytes)."""
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(payload)
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def ec_key_with_short_coordinate():
    """A P-256 key one of whose coordinates starts with a zero byte: PyJWT 2.6 writes such a
    coordinate in fewer than 32 bytes (RFC 7518 §6.2.1.2 wants the full size)."""
    while True:
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        if numbers.x < 1 << 248 or numbers.y < 1 << 248:
            return key


def main() -> None:
    hmac_secret = os.urandom(64)
    hmac_secret_2 = os.urandom(64)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_key_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_short = ec_key_with_short_coordinate()
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()

    algorithms = jwt.algorithms
    keys = {
        "hmac": {"secret": b64url(hmac_secret)},
        "hmac2": {"secret": b64url(hmac_secret_2)},
        "rsa": {"pem": public_pem(rsa_key)},
        "rsa2": {"pem": public_pem(rsa_key_2)},
        "rsa1024": {"pem": public_pem(rsa_1024)},
        "p256": {"pem": public_pem(p256)},
        "p256_short": {"pem": public_pem(p256_short)},
        "p384": {"pem": public_pem(p384)},
        "ed25519": {"pem": public_pem(ed)},
        # A throwaway private key: the loader must refuse private keys.
        "private_pem": {"pem": ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()},
    }
    jwks = {"keys": [
        jwk_of(algorithms.HMACAlgorithm, hmac_secret, "hmac-1", use="sig"),
        jwk_of(algorithms.HMACAlgorithm, hmac_secret_2, "hmac-2", alg="HS512"),
        jwk_of(algorithms.RSAAlgorithm, rsa_key.public_key(), "rsa-1"),
        # Pinned to PS256 by its "alg": an RS256 token naming it must fail.
        jwk_of(algorithms.RSAAlgorithm, rsa_key_2.public_key(), "rsa-2", alg="PS256"),
        jwk_of(algorithms.ECAlgorithm, p256.public_key(), "p256-1", use="sig"),
        jwk_of(algorithms.ECAlgorithm, p256_short.public_key(), "p256-short"),
        jwk_of(algorithms.ECAlgorithm, p384.public_key(), "p384-1"),
        jwk_of(algorithms.OKPAlgorithm, ed.public_key(), "ed25519-1"),
        # Skipped by the loader (RFC 7517 §5): an encryption key and a curve we do not verify.
        jwk_of(algorithms.RSAAlgorithm, rsa_key_2.public_key(), "rsa-enc", use="enc",
               key_ops=["encrypt"]),
        jwk_of(algorithms.ECAlgorithm, ec.generate_private_key(ec.SECP521R1()).public_key(),
               "p521-1"),
    ]}
    # Two keys only, for "a JWKS with two keys selected by kid".
    jwks_two = {"keys": [jwks["keys"][2], jwk_of(algorithms.RSAAlgorithm,
                                                 rsa_key_2.public_key(), "rsa-2b")]}

    info = {"name": "Ad\u00e9", "roles": ["admin"], "n": 1.5}
    base = {
        "sub": "user-42", "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 600,
        "pylon": {"subscribe": ["chat:*", "news"], "publish": ["chat:room-1"], "info": info},
    }
    signing_keys = {
        "HS256": hmac_secret, "HS384": hmac_secret, "HS512": hmac_secret,
        "RS256": rsa_key, "RS384": rsa_key, "RS512": rsa_key,
        "PS256": rsa_key, "PS384": rsa_key, "PS512": rsa_key,
        "ES256": p256, "ES384": p384, "EdDSA": ed,
    }
    key_names = {"HS": "hmac", "RS": "rsa", "PS": "rsa", "ES256": "p256", "ES384": "p384",
                 "EdDSA": "ed25519"}
    kids = {"hmac": "hmac-1", "rsa": "rsa-1", "p256": "p256-1", "p384": "p384-1",
            "ed25519": "ed25519-1"}

    tokens = {}

    def add(name, token, key, **extra):
        tokens[name] = {"token": token, "key": key, **extra}

    for alg, signing_key in signing_keys.items():
        key = key_names.get(alg, key_names.get(alg[:2]))
        add("valid_" + alg, jwt.encode(base, signing_key, algorithm=alg), key)
        add("kid_" + alg, jwt.encode(base, signing_key, algorithm=alg,
                                     headers={"kid": kids[key]}), "jwks")
    add("kid_p256_short", jwt.encode(base, p256_short, algorithm="ES256",
                                     headers={"kid": "p256-short"}), "jwks")
    add("kid_hmac2_HS512", jwt.encode(base, hmac_secret_2, algorithm="HS512",
                                      headers={"kid": "hmac-2"}), "jwks")
    add("kid_hmac2_HS256", jwt.encode(base, hmac_secret_2, algorithm="HS256",
                                      headers={"kid": "hmac-2"}), "jwks")
    add("kid_rsa2_PS256", jwt.encode(base, rsa_key_2, algorithm="PS256",
                                     headers={"kid": "rsa-2"}), "jwks")
    add("kid_rsa2_RS256", jwt.encode(base, rsa_key_2, algorithm="RS256",
                                     headers={"kid": "rsa-2"}), "jwks")
    add("kid_rsa2b_RS256", jwt.encode(base, rsa_key_2, algorithm="RS256",
                                      headers={"kid": "rsa-2b"}), "jwks_two")
    add("kid_rsa1_signed_by_rsa2", jwt.encode(base, rsa_key_2, algorithm="RS256",
                                              headers={"kid": "rsa-1"}), "jwks")
    add("wrong_kid", jwt.encode(base, rsa_key, algorithm="RS256", headers={"kid": "nope"}),
        "jwks")
    add("rsa_signed_by_other_rsa", jwt.encode(base, rsa_key_2, algorithm="RS256"), "rsa")

    def hs256(payload, **headers):
        return jwt.encode(payload, hmac_secret, algorithm="HS256", headers=headers or None)

    add("expired", hs256(dict(base, exp=NOW - 30)), "hmac")
    add("not_yet_valid", hs256(dict(base, nbf=NOW + 30)), "hmac")
    add("decimal_exp", hs256(dict(base, exp=NOW + 0.5, iat=NOW - 0.25)), "hmac")
    add("no_exp", hs256({k: v for k, v in base.items() if k != "exp"}), "hmac")
    add("minimal", hs256({"exp": NOW + 600}), "hmac")
    add("aud_single", hs256(dict(base, aud="pylon")), "hmac")
    add("aud_list", hs256(dict(base, aud=["other", "pylon"])), "hmac")
    add("aud_wrong", hs256(dict(base, aud="other")), "hmac")
    add("iss_right", hs256(dict(base, iss="https://auth.example")), "hmac")
    add("iss_wrong", hs256(dict(base, iss="https://evil.example")), "hmac")
    add("subscription", hs256({"sub": "user-42", "exp": NOW + 600,
                               "pylon": {"topic": "private:42", "info": "vip"}}), "hmac")
    add("typ_jwt_lowercase", hs256(base, typ="jwt"), "hmac")
    add("typ_at_jwt", hs256(base, typ="at+jwt"), "hmac")
    add("crit", hs256(base, crit=["exp"]), "hmac")
    add("exp_string", hs256(dict(base, exp=str(NOW + 600))), "hmac")
    add("sub_number", hs256(dict(base, sub=42)), "hmac")
    add("aud_number", hs256(dict(base, aud=["pylon", 7])), "hmac")
    add("subscribe_not_array", hs256(dict(base, pylon={"subscribe": "chat:*"})), "hmac")
    add("subscribe_bad_pattern", hs256(dict(base, pylon={"subscribe": ["*chat"]})), "hmac")
    add("topic_bad", hs256({"exp": NOW + 600, "pylon": {"topic": "bad topic"}}), "hmac")
    add("pylon_not_object", hs256(dict(base, pylon=["chat:*"])), "hmac")
    add("alg_none", jwt.encode(base, None, algorithm="none"), "rsa")

    # HS256 keyed with the RSA public key's PEM text (PyJWT refuses to do this; hmac does not).
    add("hs256_with_rsa_pem", manual_token({"alg": "HS256", "typ": "JWT"},
                                           json.dumps(base).encode(),
                                           keys["rsa"]["pem"].encode()), "rsa")
    # ES256 whose signature is DER (what OpenSSL emits) instead of JWS's raw R || S.
    header = b64url(b'{"alg":"ES256","typ":"JWT"}')
    body = b64url(json.dumps(base, separators=(",", ":")).encode())
    der = p256.sign((header + "." + body).encode(), ec.ECDSA(hashes.SHA256()))
    add("es256_der_signature", header + "." + body + "." + b64url(der), "p256")
    # Valid MACs over payloads that are not what a JWT payload must be.
    add("payload_bad_json", manual_token({"alg": "HS256"}, b'{"sub":"x",', hmac_secret), "hmac")
    add("payload_not_object", manual_token({"alg": "HS256"}, b'["x"]', hmac_secret), "hmac")
    add("payload_deep", manual_token(
        {"alg": "HS256"},
        b'{"exp":%d,"pylon":{"info":%s1%s}}' % (NOW + 600, b"[" * 20, b"]" * 20),
        hmac_secret), "hmac")
    add("payload_duplicate_exp", manual_token(
        {"alg": "HS256"}, b'{"exp":%d,"exp":%d}' % (NOW + 600, NOW - 600), hmac_secret), "hmac")
    add("payload_big_integer", manual_token(
        {"alg": "HS256"}, b'{"exp":%d,"pylon":{"info":123456789012345678901234567890}}'
        % (NOW + 600), hmac_secret), "hmac")
    add("header_bad_json", b64url(b'{alg:"HS256"}') + "." + body + "." + b64url(b"x" * 32),
        "hmac")
    add("header_duplicate_alg", manual_token({"alg": "HS256"}, b"{}", hmac_secret)
        .replace(b64url(b'{"alg":"HS256"}'), b64url(b'{"alg":"HS256","alg":"none"}')), "hmac")

    vectors = {
        "generator": f"PyJWT {jwt.__version__}, cryptography {cryptography.__version__}",
        "now": NOW,
        "info": json.dumps(info, separators=(",", ":")),  # what PyJWT wrote: the raw text
        "keys": keys,
        "jwks": jwks,
        "jwks_two": jwks_two,
        "tokens": tokens,
    }
    (HERE / "vectors.json").write_text(json.dumps(vectors, indent=1) + "\n")

    # Fuzz seeds: byte 0 is the harness's mode (0: the token as is), then a token for the fuzz
    # target's own keys.
    FUZZ_CORPUS.mkdir(parents=True, exist_ok=True)
    fuzz_ec = ec.derive_private_key(FUZZ_EC_SCALAR, ec.SECP256R1())
    numbers = fuzz_ec.public_key().public_numbers()
    print("fuzz EC x", numbers.x.to_bytes(32, "big").hex(), "y", numbers.y.to_bytes(32, "big").hex())
    seeds = {
        "hs256": jwt.encode(base, FUZZ_SECRET, algorithm="HS256"),
        "hs512_kid": jwt.encode(base, FUZZ_SECRET, algorithm="HS512", headers={"kid": "h"}),
        "es256": jwt.encode(base, fuzz_ec, algorithm="ES256"),
        "subscription": jwt.encode({"exp": NOW + 600, "pylon": {"topic": "a:b"}}, FUZZ_SECRET,
                                   algorithm="HS256"),
        "none": jwt.encode(base, None, algorithm="none"),
    }
    for name, token in seeds.items():
        (FUZZ_CORPUS / ("token_" + name)).write_bytes(b"\x00" + token.encode())
    # Mode 1: the harness signs the payload JSON that follows with HS256 itself.
    (FUZZ_CORPUS / "payload_base").write_bytes(b"\x01" + json.dumps(base).encode())
    (FUZZ_CORPUS / "payload_subscription").write_bytes(
        b"\x01" + b'{"exp":1700000600,"aud":["x","pylon"],"pylon":{"topic":"a:b","info":null}}')


if __name__ == "__main__":
    main()
