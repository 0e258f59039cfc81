#include "server/tls_ocsp.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/tls.hpp"

// The checks of a response before it is stapled, on certificates and responses made here with
// OpenSSL (a CA, a server certificate, delegated responders). The handshakes that staple are
// tested end to end in tests/integration/test_tls_ocsp.py with openssl s_client.

namespace pylon::detail {
namespace {

template <typename Object, void (*release)(Object*)>
using Owned = net::OpenSslOwned<Object, release>;
using Key = Owned<EVP_PKEY, EVP_PKEY_free>;
using Certificate = Owned<X509, X509_free>;
using Context = Owned<SSL_CTX, SSL_CTX_free>;

constexpr long kHour = 3600;

Key new_key() {
  return Key(EVP_EC_gen("P-256"));
}

// A certificate for `name`, signed by `issuer` (self-signed when null), with extensions in
// OpenSSL's configuration syntax.
Certificate make_certificate(const char* name, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                             long serial,
                             const std::vector<std::pair<int, const char*>>& extensions) {
  Certificate certificate(X509_new());
  X509* self = certificate.get();
  X509_set_version(self, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(self), serial);
  X509_NAME* subject = X509_get_subject_name(self);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name), -1, -1, 0);
  X509_set_issuer_name(self, issuer != nullptr ? X509_get_subject_name(issuer) : subject);
  X509_gmtime_adj(X509_getm_notBefore(self), -kHour);
  X509_gmtime_adj(X509_getm_notAfter(self), 24 * kHour);
  X509_set_pubkey(self, key);
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer != nullptr ? issuer : self, self, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    X509_add_ext(self, extension, -1);
    X509_EXTENSION_free(extension);
  }
  X509_sign(self, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return certificate;
}

struct Signer {
  X509* certificate;
  EVP_PKEY* key;
};

struct ResponseShape {
  int status = V_OCSP_CERTSTATUS_GOOD;
  long this_update = 0;                     // seconds from now
  std::optional<long> next_update = kHour;  // seconds from now; none: no nextUpdate
  const EVP_MD* id_digest = EVP_sha1();
};

std::string der_of(OCSP_RESPONSE* response) {
  unsigned char* der = nullptr;
  const int size = i2d_OCSP_RESPONSE(response, &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return bytes;
}

// A DER response about `subject` (issued by `issuer`) signed by `signer`, which it carries.
std::string make_response(X509* subject, X509* issuer, Signer signer, ResponseShape shape) {
  Owned<OCSP_BASICRESP, OCSP_BASICRESP_free> basic(OCSP_BASICRESP_new());
  Owned<OCSP_CERTID, OCSP_CERTID_free> id(OCSP_cert_to_id(shape.id_digest, subject, issuer));
  Owned<ASN1_TIME, ASN1_TIME_free> this_update(X509_gmtime_adj(nullptr, shape.this_update));
  Owned<ASN1_TIME, ASN1_TIME_free> next_update(
      shape.next_update ? X509_gmtime_adj(nullptr, *shape.next_update) : nullptr);
  const bool revoked = shape.status == V_OCSP_CERTSTATUS_REVOKED;
  Owned<ASN1_TIME, ASN1_TIME_free> revoked_at(revoked ? X509_gmtime_adj(nullptr, -kHour) : nullptr);
  OCSP_basic_add1_status(basic.get(), id.get(), shape.status,
                         revoked ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0, revoked_at.get(),
                         this_update.get(), next_update.get());
  OCSP_basic_sign(basic.get(), signer.certificate, signer.key, EVP_sha256(), nullptr, 0);
  Owned<OCSP_RESPONSE, OCSP_RESPONSE_free> response(
      OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  return der_of(response.get());
}

class OcspStapleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char directory[] = "/tmp/pylon-ocsp-XXXXXX";
    ASSERT_NE(mkdtemp(directory), nullptr);
    directory_ = directory;
    certificate_file_ = directory_ + "/server.pem";
    ca_key_ = new_key();
    ca_ = make_certificate("test CA", ca_key_.get(), nullptr, nullptr, 1,
                           {{NID_basic_constraints, "critical,CA:TRUE"},
                            {NID_key_usage, "critical,keyCertSign,cRLSign"},
                            {NID_subject_key_identifier, "hash"}});
    server_key_ = new_key();
    server_ = make_certificate("localhost", server_key_.get(), ca_.get(), ca_key_.get(), 2,
                               {{NID_basic_constraints, "critical,CA:FALSE"}});
    context_ = served(server_.get(), server_key_.get(), ca_.get());
  }
  void TearDown() override {
    std::remove(OcspStaple::file_for(certificate_file_).c_str());
    ::rmdir(directory_.c_str());
  }

  // What `pylon serve` loads from a certificate file: the certificate, its key and its chain.
  static Context served(X509* certificate, EVP_PKEY* key, X509* chain) {
    Context context(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(context.get(), certificate);
    SSL_CTX_use_PrivateKey(context.get(), key);
    if (chain != nullptr) SSL_CTX_add1_chain_cert(context.get(), chain);
    return context;
  }

  // Writes the response beside the certificate file and loads it as the server does.
  std::unique_ptr<OcspStaple> load(const std::string& response, SSL_CTX* context = nullptr) {
    std::ofstream(OcspStaple::file_for(certificate_file_), std::ios::binary) << response;
    return std::make_unique<OcspStaple>(context != nullptr ? context : context_.get(),
                                        certificate_file_);
  }
  std::string response(ResponseShape shape = {}) {
    return make_response(server_.get(), ca_.get(), {ca_.get(), ca_key_.get()}, shape);
  }

  std::string directory_, certificate_file_;
  Key ca_key_, server_key_;
  Certificate ca_, server_;
  Context context_;
};

TEST_F(OcspStapleTest, AGoodResponseOfTheIssuerIsStapledUntilItsNextUpdate) {
  const auto staple = load(response());
  EXPECT_TRUE(staple->stapled()) << staple->problem();
  EXPECT_EQ(staple->status(), "good");
  EXPECT_NEAR(static_cast<double>(staple->next_update()),
              static_cast<double>(time(nullptr) + kHour), 5);
  EXPECT_EQ(staple->file(), certificate_file_ + ".ocsp");
}

TEST_F(OcspStapleTest, ARevokedResponseIsStapledAndAnUnknownOneIsNot) {
  EXPECT_EQ(load(response({.status = V_OCSP_CERTSTATUS_REVOKED}))->status(), "revoked");
  const auto unknown = load(response({.status = V_OCSP_CERTSTATUS_UNKNOWN}));
  EXPECT_FALSE(unknown->stapled());
  EXPECT_EQ(unknown->problem(), "the responder does not know the certificate (status unknown)");
  EXPECT_EQ(unknown->next_update(), 0);
}

TEST_F(OcspStapleTest, TheCertificateIdMayUseAnotherHash) {
  EXPECT_TRUE(load(response({.id_digest = EVP_sha256()}))->stapled());
}

TEST_F(OcspStapleTest, TimesMustBeCurrent) {
  EXPECT_EQ(load(response({.this_update = -2 * kHour, .next_update = -kHour}))
                ->problem()
                .rfind("it expired at ", 0),
            0u);
  EXPECT_EQ(load(response({.next_update = std::nullopt}))->problem(),
            "it has no nextUpdate, so it never goes stale");
  EXPECT_NE(load(response({.this_update = kHour, .next_update = 2 * kHour}))
                ->problem()
                .find("is in the future"),
            std::string::npos);
  // A responder clock a minute ahead is not a fault.
  EXPECT_TRUE(load(response({.this_update = 60}))->stapled());
}

TEST_F(OcspStapleTest, AResponseAboutAnotherCertificateIsRefused) {
  const Key other_key = new_key();
  const Certificate other =
      make_certificate("other", other_key.get(), ca_.get(), ca_key_.get(), 3, {});
  const std::string about_other =
      make_response(other.get(), ca_.get(), {ca_.get(), ca_key_.get()}, {});
  EXPECT_EQ(load(about_other)->problem(), "it is about another certificate");
}

TEST_F(OcspStapleTest, OnlyTheIssuerOrAResponderItDelegatedMaySign) {
  const Key responder_key = new_key();
  const Certificate delegated =
      make_certificate("OCSP responder", responder_key.get(), ca_.get(), ca_key_.get(), 4,
                       {{NID_ext_key_usage, "OCSPSigning"}});
  EXPECT_TRUE(
      load(make_response(server_.get(), ca_.get(), {delegated.get(), responder_key.get()}, {}))
          ->stapled());
  // The same certificate without id-kp-OCSPSigning (RFC 6960 §4.2.2.2) may not.
  const Certificate undelegated =
      make_certificate("not a responder", responder_key.get(), ca_.get(), ca_key_.get(), 5, {});
  EXPECT_EQ(
      load(make_response(server_.get(), ca_.get(), {undelegated.get(), responder_key.get()}, {}))
          ->problem()
          .rfind("its signature does not verify", 0),
      0u);
  // Another CA, whose certificate the response carries.
  const Key stranger_key = new_key();
  const Certificate stranger = make_certificate("stranger CA", stranger_key.get(), nullptr, nullptr,
                                                6, {{NID_basic_constraints, "CA:TRUE"}});
  EXPECT_EQ(load(make_response(server_.get(), ca_.get(), {stranger.get(), stranger_key.get()}, {}))
                ->problem()
                .rfind("its signature does not verify", 0),
            0u);
}

TEST_F(OcspStapleTest, WithoutTheIssuerInTheChainNothingCanBeChecked) {
  const Context alone = served(server_.get(), server_key_.get(), nullptr);
  EXPECT_EQ(load(response(), alone.get())->problem().rfind("the certificate's issuer is not", 0),
            0u);
}

TEST_F(OcspStapleTest, NoFileOrNotAResponse) {
  EXPECT_EQ(OcspStaple(context_.get(), directory_ + "/missing.pem").problem(),
            "cannot read " + directory_ + "/missing.pem.ocsp: No such file or directory");
  EXPECT_EQ(load("not DER")->problem(), "not a DER OCSP response");
  EXPECT_EQ(load(response() + "x")->problem(), "not a DER OCSP response");  // trailing bytes
  Owned<OCSP_RESPONSE, OCSP_RESPONSE_free> refused(
      OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, nullptr));
  EXPECT_EQ(load(der_of(refused.get()))->problem(), "the responder answered \"trylater\"");
}

}  // namespace
}  // namespace pylon::detail
