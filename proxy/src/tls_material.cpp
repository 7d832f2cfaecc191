// The local CA and server certificate, made with OpenSSL 3's EVP and X509 APIs (never the
// openssl binary). Only this file touches the PEM files under the TLS directory; the listener
// reads them through the paths ensure_local_tls() returns.
#include "berth/proxy/tls_material.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <compare>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "berth/core/error.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

constexpr auto ca_validity = std::chrono::days(3650);
// Browsers reject leaf certificates valid for longer (CA/Browser Forum baseline, since 2020).
constexpr auto server_validity = std::chrono::days(397);
constexpr auto renew_margin = std::chrono::days(30);
// Clients whose clock lags a little must not see a certificate that is not yet valid.
constexpr auto backdate = std::chrono::hours(1);
// X.520 upper bound for commonName; longer names make OpenSSL refuse the entry.
constexpr std::size_t max_common_name = 64;

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* pointer) const {
    Free(pointer);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, Deleter<ASN1_STRING_free>>;

/// The oldest entry of OpenSSL's error queue (it names the root cause), and clears the queue.
std::string openssl_error_text() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

[[noreturn]] void throw_openssl(std::string const& what) {
  throw Error(what + ": " + openssl_error_text());
}

[[noreturn]] void throw_io(std::string const& what, fs::path const& path, int error) {
  std::string message = what + " " + path.string() + ": " + std::strerror(error);
  if (error == EACCES || error == EPERM)
    message += "\nHINT: run berth as the user that owns " + path.parent_path().string() +
               " (keys there are readable by their owner only)";
  else if (error == ENOSPC || error == EDQUOT)
    message += "\nHINT: the volume holding " + path.parent_path().string() + " is full";
  throw Error(message);
}

class Descriptor {
public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(Descriptor const&) = delete;
  Descriptor& operator=(Descriptor const&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

/// The file's bytes, or nullopt when it does not exist.
std::optional<std::string> read_file(fs::path const& path, std::string const& what) {
  Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot read " + what, path, errno);
  }
  std::string bytes;
  std::array<char, 8192> buffer{};
  for (;;) {
    auto got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw_io("cannot read " + what, path, errno);
    if (got == 0) return bytes;
    bytes.append(buffer.data(), static_cast<std::size_t>(got));
  }
}

void fsync_directory(fs::path const& dir, std::string const& what) {
  Descriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) throw_io("cannot sync directory of " + what, dir, errno);
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new one.
/// The temp file is created with `mode` from the start: a key is never readable by others.
void write_atomically(fs::path const& path, std::string const& what, std::string_view bytes, mode_t mode) {
  fs::path temp = path;
  temp += ".tmp";
  // A temp file left by a crash may have another mode; O_EXCL below only creates, never reuses.
  if (::unlink(temp.c_str()) != 0 && errno != ENOENT) throw_io("cannot write " + what, temp, errno);
  Descriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) throw_io("cannot write " + what, temp, errno);
  auto fail = [&](int error) {
    ::unlink(temp.c_str());
    throw_io("cannot write " + what, temp, error);
  };
  while (!bytes.empty()) {
    auto written = ::write(fd.get(), bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) fail(errno);
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fsync(fd.get()) != 0) fail(errno);
  if (::close(fd.release()) != 0) fail(errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail(errno);
  fsync_directory(path.parent_path(), what);
}

void ensure_directory(fs::path const& dir) {
  std::error_code error;
  if (fs::is_directory(dir, error)) return;
  fs::path target = dir.lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), error);
    if (error) throw_io("cannot create TLS directory", target.parent_path(), error.value());
  }
  if (::mkdir(target.c_str(), 0700) != 0 && errno != EEXIST) throw_io("cannot create TLS directory", target, errno);
}

int refuse_password(char*, int, int, void*) {
  return -1;
}

BioPtr memory_bio(std::string const& bytes) {
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) throw_openssl("cannot allocate an OpenSSL buffer");
  return bio;
}

// A refusing password callback: without it OpenSSL would prompt on the terminal for an
// encrypted key.
PkeyPtr parse_key(std::string const& pem) {
  return PkeyPtr(PEM_read_bio_PrivateKey(memory_bio(pem).get(), nullptr, refuse_password, nullptr));
}

X509Ptr parse_certificate(std::string const& pem) {
  return X509Ptr(PEM_read_bio_X509(memory_bio(pem).get(), nullptr, refuse_password, nullptr));
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw_openssl("cannot encode a private key");
  return bio_contents(bio.get());
}

std::string certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw_openssl("cannot encode a certificate");
  return bio_contents(bio.get());
}

PkeyPtr generate_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) throw_openssl("cannot generate a P-256 key");
  return key;
}

/// One subjectAltName entry: type GEN_DNS with the lowercase name, or GEN_IPADD with the
/// address in network byte order (4 or 16 bytes). Ordered so sets of them compare.
struct AltName {
  int type = GEN_DNS;
  std::string value;
  auto operator<=>(AltName const&) const = default;
};

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '*';
  });
}

AltName parse_hostname(std::string const& hostname) {
  std::string text = hostname;
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::array<unsigned char, 16> address{};
  if (::inet_pton(AF_INET, text.c_str(), address.data()) == 1)
    return {GEN_IPADD, std::string(reinterpret_cast<char const*>(address.data()), 4)};
  if (::inet_pton(AF_INET6, text.c_str(), address.data()) == 1)
    return {GEN_IPADD, std::string(reinterpret_cast<char const*>(address.data()), 16)};
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!is_dns_name(text))
    throw Error("cannot issue a server certificate for hostname \"" + hostname +
                "\": neither a DNS name nor an IP address\nHINT: use a name such as registry.home.arpa or an "
                "address such as 192.168.1.10 or ::1, without port or scheme");
  return {GEN_DNS, text};
}

/// The names in the order given, without duplicates.
std::vector<AltName> parse_hostnames(std::vector<std::string> const& hostnames) {
  if (hostnames.empty()) throw Error("cannot issue a server certificate without hostnames");
  std::vector<AltName> names;
  for (auto const& hostname : hostnames) {
    auto name = parse_hostname(hostname);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
  }
  return names;
}

std::set<AltName> alt_names_of(X509* cert) {
  std::set<AltName> result;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return result;
  for (int name_idx = 0; name_idx < sk_GENERAL_NAME_num(names.get()); ++name_idx) {
    GENERAL_NAME const* name = sk_GENERAL_NAME_value(names.get(), name_idx);
    ASN1_STRING const* value = name->type == GEN_DNS     ? name->d.dNSName
                               : name->type == GEN_IPADD ? name->d.iPAddress
                                                         : nullptr;
    // Any other kind of name makes the set differ from what we would issue.
    std::string text = value ? std::string(reinterpret_cast<char const*>(ASN1_STRING_get0_data(value)),
                                           static_cast<std::size_t>(ASN1_STRING_length(value)))
                             : std::string();
    if (name->type == GEN_DNS)
      std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    result.insert({name->type, std::move(text)});
  }
  return result;
}

time_t to_time(Clock::time_point point) {
  return Clock::to_time_t(point);
}

/// A v3 certificate for `key` with a random 128-bit serial, subject CN `common_name` (none when
/// empty) and validity starting a little before `now`; no issuer, extensions or signature yet.
X509Ptr start_certificate(EVP_PKEY* key, std::string const& common_name, Clock::time_point now,
                          Clock::duration validity) {
  X509Ptr cert(X509_new());
  BnPtr serial(BN_new());
  if (!cert || !serial) throw_openssl("cannot allocate a certificate");
  do {
    if (BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
      throw_openssl("cannot draw a certificate serial number");
  } while (BN_is_zero(serial.get()));
  auto not_before = now - backdate;
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), to_time(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), to_time(not_before + validity)) == nullptr)
    throw_openssl("cannot fill in a certificate");
  if (!common_name.empty() &&
      X509_NAME_add_entry_by_NID(X509_get_subject_name(cert.get()), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<unsigned char const*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1)
    throw_openssl("cannot set certificate subject \"" + common_name + "\"");
  return cert;
}

void add_extension(X509* cert, X509V3_CTX* context, int nid, char const* value) {
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, context, nid, value));
  if (!extension || X509_add_ext(cert, extension.get(), -1) != 1)
    throw_openssl(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid) + " " + value);
}

void add_alt_names(X509* cert, std::vector<AltName> const& names, bool critical) {
  GeneralNamesPtr general_names(GENERAL_NAMES_new());
  if (!general_names) throw_openssl("cannot allocate subjectAltName");
  for (auto const& name : names) {
    GeneralNamePtr general_name(GENERAL_NAME_new());
    Asn1StringPtr value(name.type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new());
    if (!general_name || !value ||
        ASN1_STRING_set(value.get(), name.value.data(), static_cast<int>(name.value.size())) != 1)
      throw_openssl("cannot build subjectAltName");
    GENERAL_NAME_set0_value(general_name.get(), name.type, value.release());
    if (sk_GENERAL_NAME_push(general_names.get(), general_name.get()) <= 0)
      throw_openssl("cannot build subjectAltName");
    general_name.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, general_names.get(), critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    throw_openssl("cannot add subjectAltName");
}

void sign(X509* cert, EVP_PKEY* issuer_key) {
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) throw_openssl("cannot sign a certificate");
}

std::string display_name(AltName const& name) {
  if (name.type == GEN_DNS) return name.value;
  std::array<char, INET6_ADDRSTRLEN> text{};
  ::inet_ntop(name.value.size() == 4 ? AF_INET : AF_INET6, name.value.data(), text.data(), text.size());
  return text.data();
}

X509Ptr make_ca_certificate(EVP_PKEY* key, AltName const& first_name, Clock::time_point now) {
  std::string common_name = ("berth local CA " + display_name(first_name)).substr(0, max_common_name);
  X509Ptr cert = start_certificate(key, common_name, now, ca_validity);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1)
    throw_openssl("cannot set CA certificate issuer");
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  add_extension(cert.get(), &context, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), &context, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert.get(), &context, NID_subject_key_identifier, "hash");
  sign(cert.get(), key);
  return cert;
}

struct Authority {
  PkeyPtr key;
  X509Ptr cert;
};

std::string const ca_recreate_hint =
    "\nHINT: restore ca.key and ca.crt from a backup, or remove both to create a new CA "
    "(every client must then trust the new ca.crt)";

/// Loads the CA from `dir`, creating it when neither file exists. A CA is never replaced
/// silently: clients trust it, so a broken one is an error the operator resolves.
Authority ensure_authority(fs::path const& dir, AltName const& first_name, Clock::time_point now) {
  fs::path key_path = dir / "ca.key";
  fs::path cert_path = dir / "ca.crt";
  auto key_text = read_file(key_path, "CA key");
  auto cert_text = read_file(cert_path, "CA certificate");
  Authority ca;
  if (!key_text) {
    if (cert_text)
      throw Error("cannot read CA key " + key_path.string() + ": " + std::strerror(ENOENT) + ca_recreate_hint);
    // The key goes first: a crash before ca.crt is written leaves a key the next start reuses.
    ca.key = generate_key();
    write_atomically(key_path, "CA key", key_pem(ca.key.get()), 0600);
  } else {
    ca.key = parse_key(*key_text);
    if (!ca.key)
      throw Error("cannot read CA key " + key_path.string() + ": " + openssl_error_text() + ca_recreate_hint);
  }
  if (!cert_text) {
    ca.cert = make_ca_certificate(ca.key.get(), first_name, now);
    write_atomically(cert_path, "CA certificate", certificate_pem(ca.cert.get()), 0644);
    return ca;
  }
  ca.cert = parse_certificate(*cert_text);
  if (!ca.cert)
    throw Error("cannot read CA certificate " + cert_path.string() + ": " + openssl_error_text() + ca_recreate_hint);
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    ERR_clear_error();
    throw Error("CA certificate " + cert_path.string() + " does not belong to CA key " + key_path.string() +
                ca_recreate_hint);
  }
  time_t at = to_time(now);
  if (X509_cmp_time(X509_get0_notAfter(ca.cert.get()), &at) <= 0)
    throw Error("CA certificate " + cert_path.string() + " has expired" + ca_recreate_hint);
  return ca;
}

/// Whether `cert` chains to `ca` for TLS server use at `now`: signature, validity, key usage.
bool verifies(X509* cert, X509* ca, Clock::time_point now) {
  StorePtr store(X509_STORE_new());
  StoreCtxPtr context(X509_STORE_CTX_new());
  if (!store || !context || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(context.get(), store.get(), cert, nullptr) != 1)
    throw_openssl("cannot set up certificate verification");
  X509_STORE_CTX_set_time(context.get(), 0, to_time(now));
  X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
  bool ok = X509_verify_cert(context.get()) == 1;
  ERR_clear_error();
  return ok;
}

/// Whether server.key and server.crt exist, belong together and need no renewal.
bool server_is_current(TlsMaterial const& material, Authority const& ca, std::vector<AltName> const& names,
                       Clock::time_point now) {
  auto key_text = read_file(material.server_key, "server key");
  auto cert_text = read_file(material.server_cert, "server certificate");
  if (!key_text || !cert_text) return false;
  // Server files are ours to replace: a corrupt one is simply issued again.
  PkeyPtr key = parse_key(*key_text);
  X509Ptr cert = parse_certificate(*cert_text);
  bool matches = key && cert && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!matches) return false;
  time_t renew_at = to_time(now + renew_margin);
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &renew_at) <= 0) return false;
  if (alt_names_of(cert.get()) != std::set<AltName>(names.begin(), names.end())) return false;
  return verifies(cert.get(), ca.cert.get(), now);
}

void issue_server_certificate(TlsMaterial const& material, Authority const& ca, std::vector<AltName> const& names,
                              Clock::time_point now) {
  PkeyPtr key = generate_key();
  std::string common_name = display_name(names.front());
  // RFC 5280: with an empty subject, subjectAltName must be critical.
  if (common_name.size() > max_common_name) common_name.clear();
  X509Ptr cert = start_certificate(key.get(), common_name, now, server_validity);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get())) != 1)
    throw_openssl("cannot set server certificate issuer");
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, ca.cert.get(), cert.get(), nullptr, nullptr, 0);
  add_extension(cert.get(), &context, NID_basic_constraints, "CA:FALSE");
  add_extension(cert.get(), &context, NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), &context, NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), &context, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), &context, NID_authority_key_identifier, "keyid:always");
  add_alt_names(cert.get(), names, common_name.empty());
  sign(cert.get(), ca.key.get());
  // Key first: a crash in between leaves a key that does not match server.crt, which the next
  // call detects and repairs.
  write_atomically(material.server_key, "server key", key_pem(key.get()), 0600);
  write_atomically(material.server_cert, "server certificate", certificate_pem(cert.get()), 0644);
}

/// `text` as one shell word.
std::string shell_quote(std::string const& text) {
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || std::strchr("/._-:@+=,%", c) != nullptr;
  });
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string sha256_fingerprint(X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (X509_digest(cert, EVP_sha256(), digest.data(), &size) != 1) throw_openssl("cannot hash the CA certificate");
  std::string text;
  constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned int byte_idx = 0; byte_idx < size; ++byte_idx) {
    if (byte_idx > 0) text += ':';
    text += hex[digest[byte_idx] >> 4];
    text += hex[digest[byte_idx] & 0xf];
  }
  return text;
}

}  // namespace

TlsMaterial ensure_local_tls(fs::path const& dir, std::vector<std::string> const& hostnames, Clock::time_point now) {
  // Stale entries from other code on this thread would be reported as ours.
  ERR_clear_error();
  // Validate the names before anything is written.
  std::vector<AltName> names = parse_hostnames(hostnames);
  TlsMaterial material{dir / "ca.crt", dir / "server.crt", dir / "server.key"};
  ensure_directory(dir);
  Authority ca = ensure_authority(dir, names.front(), now);
  if (!server_is_current(material, ca, names, now)) issue_server_certificate(material, ca, names, now);
  return material;
}

std::string trust_instructions(TlsMaterial const& material, std::string const& registry_host) {
  std::string host = registry_host;
  // docker and containers/image look up certs.d/HOST without the default port.
  if (host.ends_with(":443")) host.resize(host.size() - 4);
  bool usable = !host.empty() && host != "." && host != ".." &&
                std::all_of(host.begin(), host.end(),
                            [](unsigned char c) { return std::isalnum(c) || std::strchr(".-:[]_", c) != nullptr; });
  if (!usable)
    throw Error("cannot print trust instructions for registry host \"" + registry_host +
                "\": expected HOST or HOST:PORT");
  auto pem = read_file(material.ca_cert, "CA certificate");
  if (!pem)
    throw Error("cannot read CA certificate " + material.ca_cert.string() + ": " + std::strerror(ENOENT) +
                "\nHINT: berth creates it on its first start when no TLS certificate is configured");
  X509Ptr cert = parse_certificate(*pem);
  if (!cert) throw Error("cannot read CA certificate " + material.ca_cert.string() + ": " + openssl_error_text());

  std::string const ca = shell_quote(material.ca_cert.string());
  std::string const docker_dir = shell_quote("/etc/docker/certs.d/" + host);
  std::string const containers_dir = shell_quote("/etc/containers/certs.d/" + host);
  std::string text;
  text += "berth local CA certificate (" + material.ca_cert.string() + ")\n";
  text += "SHA-256 fingerprint " + sha256_fingerprint(cert.get()) + "\n\n";
  text += *pem;
  text += "\nTrust it on every machine that pulls from or pushes to " + host +
          ". On another machine, save the certificate above to a file and use its path instead of " + ca + ".\n\n";
  text += "docker:\n  sudo mkdir -p " + docker_dir + " && sudo cp " + ca + " " +
          shell_quote("/etc/docker/certs.d/" + host + "/ca.crt") + "\n\n";
  text += "podman, skopeo, buildah:\n  sudo mkdir -p " + containers_dir + " && sudo cp " + ca + " " +
          shell_quote("/etc/containers/certs.d/" + host + "/ca.crt") + "\n\n";
  text += "system store on Debian and Ubuntu (curl, git and most other programs):\n  sudo cp " + ca +
          " /usr/local/share/ca-certificates/berth-local-ca.crt && sudo update-ca-certificates\n";
  return text;
}

}  // namespace berth::proxy
