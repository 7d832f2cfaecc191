// The OCI Distribution API over Storage. Each endpoint is one function; refusals are thrown as
// OCI errors and translated in one place (rethrow_as_oci) so handlers never build error bodies.
#include "berth/registry/api.hpp"

#include <fcntl.h>
#include <algorithm>
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "berth/registry/names.hpp"
#include "berth/registry/retention.hpp"
#include "file_io.hpp"
#include "routes.hpp"

namespace berth::registry {
namespace {

using proxy::HttpError;
using proxy::Method;
using proxy::Reply;
using proxy::Request;
using proxy::Response;

constexpr std::string_view api_version_header = "Docker-Distribution-API-Version";
constexpr std::string_view api_version = "registry/2.0";

// The spec's error codes with the statuses it gives them; `status` overrides where the spec
// wants a more specific one (416 for an upload range, 415 for an unsupported manifest type).
HttpError oci_error(std::string code, std::string const& message, int status = 0) {
  if (status == 0) {
    if (code == "BLOB_UNKNOWN" || code == "BLOB_UPLOAD_UNKNOWN" || code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN")
      status = 404;
    else if (code == "UNAUTHORIZED")
      status = 401;
    else if (code == "DENIED")
      status = 403;
    else if (code == "UNSUPPORTED")
      status = 405;
    else if (code == "TOOMANYREQUESTS")
      status = 429;
    else
      status = 400;
  }
  HttpError error(status, std::move(code), message);
  error.headers.set(std::string(api_version_header), std::string(api_version));
  return error;
}

std::string range_header(std::uint64_t size) {
  return "0-" + std::to_string(size == 0 ? 0 : size - 1);
}

// Translates the storage and manifest layer's refusals into OCI errors. Call in a catch block.
[[noreturn]] void rethrow_as_oci() {
  try {
    throw;
  } catch (UploadRangeError const& error) {
    auto http = oci_error("BLOB_UPLOAD_INVALID", error.what(), 416);
    http.headers.set("Range", range_header(error.size()));
    throw http;
  } catch (DigestMismatch const& error) {
    throw oci_error("DIGEST_INVALID", error.what());
  } catch (UploadBusy const& error) {
    throw oci_error("BLOB_UPLOAD_INVALID", error.what());
  } catch (ReferenceGone const& error) {
    throw oci_error("MANIFEST_BLOB_UNKNOWN", error.what());
  } catch (QuotaExceeded const& error) {
    logger("registry")->warn("push refused: {}", error.what());
    throw oci_error("DENIED", error.what());
  } catch (StorageFull const& error) {
    // The operator's message (with paths) goes to the log; the client learns what to do.
    logger("registry")->error("{}", error.what());
    throw oci_error("UNKNOWN",
                    "the registry's storage is full; nothing was lost, and the upload can be resumed once space "
                    "is freed",
                    507);
  } catch (ManifestError const& error) {
    if (error.unsupported()) throw oci_error("UNSUPPORTED", error.what(), 415);
    throw oci_error("MANIFEST_INVALID", error.what());
  }
}

Response empty_response(int status) {
  Response response;
  response.status = status;
  response.headers.set(std::string(api_version_header), std::string(api_version));
  return response;
}

Response json_response(int status, std::string body) {
  auto response = proxy::json_response(status, std::move(body));
  response.headers.set(std::string(api_version_header), std::string(api_version));
  return response;
}

// --- paths (parse_route: routes.hpp) ---

Digest parse_digest_or_throw(std::string_view text) {
  auto digest = Digest::parse(text);
  if (!digest)
    throw oci_error("DIGEST_INVALID", "invalid digest \"" + std::string(text) +
                                          "\": expected sha256:<64 hex digits> or sha512:<128 hex digits>");
  return *digest;
}

// "a-b", "bytes a-b" or "bytes=a-b" → a (and b when present).
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_content_range(std::string_view text) {
  for (std::string_view prefix : {"bytes=", "bytes "})
    if (text.starts_with(prefix)) text.remove_prefix(prefix.size());
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::uint64_t first = 0, last = 0;
  auto a = text.substr(0, dash), b = text.substr(dash + 1);
  if (auto slash = b.find('/'); slash != std::string_view::npos) b = b.substr(0, slash);
  if (std::from_chars(a.data(), a.data() + a.size(), first).ec != std::errc{} ||
      std::from_chars(b.data(), b.data() + b.size(), last).ec != std::errc{} || last < first)
    return std::nullopt;
  return std::pair{first, last};
}

std::optional<std::uint64_t> parse_count(std::optional<std::string> const& text) {
  if (!text) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc{} || end != text->data() + text->size())
    throw oci_error("PAGINATION_NUMBER_INVALID", "n must be a non-negative integer, got \"" + *text + "\"");
  return value;
}

// Streams part of a blob file.
class FileSource final : public proxy::BodySource {
public:
  FileSource(File file, std::uint64_t offset, std::uint64_t length)
      : file_(std::move(file)), offset_(offset), left_(length) {}
  std::optional<proxy::FileSpan> file_span() const override { return proxy::FileSpan{file_.fd(), offset_}; }
  std::size_t read(std::span<char> buffer) override {
    if (left_ == 0) return 0;
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), left_));
    auto got = file_.read_at(buffer.first(want), offset_);
    if (got == 0) throw Error("blob file " + file_.path().string() + " is shorter than recorded");
    offset_ += got;
    left_ -= got;
    return got;
  }

private:
  File file_;
  std::uint64_t offset_;
  std::uint64_t left_;
};

// Feeds a request body to an upload and answers when it is complete; errors become OCI errors.
class UploadSink final : public proxy::BodySink {
public:
  UploadSink(std::unique_ptr<UploadWriter> writer, std::function<Response(UploadWriter&)> finish,
             std::function<void()> on_abandon = {})
      : writer_(std::move(writer)), finish_(std::move(finish)), on_abandon_(std::move(on_abandon)) {}
  ~UploadSink() override {
    writer_.reset();
    if (finished_ || !on_abandon_) return;
    try {
      on_abandon_();
    } catch (std::exception const& error) {  // a destructor must not throw; the upload expires later
      logger("registry")->warn("abandoned upload not removed error=\"{}\"", error.what());
    }
  }
  std::span<char> receive_buffer() override { return writer_->receive_buffer(); }
  void write(std::span<char const> chunk) override {
    try {
      writer_->write(chunk);
    } catch (...) {
      rethrow_as_oci();
    }
  }
  Response finish() override {
    finished_ = true;
    try {
      return finish_(*writer_);
    } catch (...) {
      finished_ = false;  // a refused commit leaves the upload as abandoned as a broken one
      rethrow_as_oci();
    }
  }

private:
  std::unique_ptr<UploadWriter> writer_;
  std::function<Response(UploadWriter&)> finish_;
  std::function<void()> on_abandon_;
  bool finished_ = false;
};

class Api {
public:
  explicit Api(Storage& storage)
      : storage_(storage), config_(storage.config()), immutable_tags_(storage.config().immutable_tags) {}

  Reply handle(Request const& request) {
    try {
      return dispatch(request);
    } catch (HttpError const&) {
      throw;
    } catch (...) {
      rethrow_as_oci();
    }
  }

private:
  Reply dispatch(Request const& request) {
    std::string_view path = request.path;
    path.remove_prefix(4);  // "/v2/"
    if (path == "_catalog") {
      require(request, {Method::get, Method::head});
      return catalog(request);
    }
    auto route = parse_route(path);
    if (!route) throw oci_error("NOT_FOUND", "no registry endpoint at " + request.path, 404);
    if (request.method == Method::head && is_valid_repository_name(route->name) && !in_namespace(route->name)) {
      // A HEAD answer has no body to carry the reason, and clients print only its status. Nothing
      // can exist outside the namespaces, so say "unknown": the client goes on to a request whose
      // answer can say why (DENIED naming the namespaces).
      throw oci_error("NAME_UNKNOWN", "repository " + route->name + " is not known", 404);
    }
    check_repository(route->name);
    switch (route->endpoint) {
      case Endpoint::tags: require(request, {Method::get, Method::head}); return tags(request, route->name);
      case Endpoint::manifest: return manifest(request, route->name, route->tail);
      case Endpoint::blob: return blob(request, route->name, route->tail);
      case Endpoint::upload_start: require(request, {Method::post}); return start_upload(request, route->name);
      case Endpoint::upload: return upload(request, route->name, route->tail);
      case Endpoint::referrers:
        require(request, {Method::get, Method::head});
        return referrers(request, route->name, route->tail);
    }
    throw oci_error("NOT_FOUND", "no registry endpoint at " + request.path, 404);
  }

  static void require(Request const& request, std::initializer_list<Method> allowed) {
    if (std::find(allowed.begin(), allowed.end(), request.method) != allowed.end()) return;
    std::string allow;
    for (auto method : allowed) allow += (allow.empty() ? "" : ", ") + std::string(proxy::to_string(method));
    auto error = oci_error("UNSUPPORTED", "method " + request.method_name + " is not allowed on " + request.path);
    error.headers.set("Allow", allow);
    throw error;
  }

  bool in_namespace(std::string const& name) const {
    auto slash = name.find('/');
    if (slash == std::string::npos) return false;
    return std::find(config_.namespaces.begin(), config_.namespaces.end(), name.substr(0, slash)) !=
           config_.namespaces.end();
  }

  void check_repository(std::string const& name) const {
    if (!is_valid_repository_name(name))
      throw oci_error("NAME_INVALID", "invalid repository name \"" + name +
                                          "\": use lowercase letters, digits and the separators . _ __ -, with "
                                          "components joined by /");
    if (!in_namespace(name)) {
      auto slash = name.find('/');
      std::string allowed;
      for (auto const& ns : config_.namespaces) allowed += (allowed.empty() ? "" : ", ") + ns + "/";
      throw oci_error("DENIED", "repository \"" + name + "\" is outside the registry's namespaces (" + allowed +
                                    "); push to e.g. " + config_.namespaces.front() + "/" +
                                    name.substr(slash == std::string::npos ? 0 : slash + 1));
    }
  }

  void require_delete_enabled() const {
    if (!config_.delete_enabled)
      throw oci_error("UNSUPPORTED", "deletion is disabled on this registry (registry.delete_enabled)");
  }

  // --- blobs ---

  Reply blob(Request const& request, std::string const& name, std::string const& tail) {
    auto digest = parse_digest_or_throw(tail);
    if (request.method == Method::delete_) {
      require_delete_enabled();
      if (!storage_.unlink_blob(name, digest))
        throw oci_error("BLOB_UNKNOWN", "blob " + digest.to_string() + " is not in repository " + name);
      return empty_response(202);
    }
    require(request, {Method::get, Method::head, Method::delete_});
    auto info = storage_.find_blob(name, digest);
    if (!info) throw oci_error("BLOB_UNKNOWN", "blob " + digest.to_string() + " is not in repository " + name);

    std::uint64_t first = 0, length = info->size;
    int status = 200;
    if (auto range = request.headers.get("Range");
        range && range->starts_with("bytes=") && range->find(',') == std::string_view::npos) {
      auto spec = range->substr(6);
      auto dash = spec.find('-');
      std::uint64_t a = 0, b = 0;
      bool has_a = dash > 0 && std::from_chars(spec.data(), spec.data() + dash, a).ec == std::errc{};
      bool has_b = dash + 1 < spec.size() &&
                   std::from_chars(spec.data() + dash + 1, spec.data() + spec.size(), b).ec == std::errc{};
      if (dash != std::string_view::npos && (has_a || has_b)) {
        if (!has_a) {  // suffix range: the last b bytes
          a = b >= info->size ? 0 : info->size - b;
          b = info->size - 1;
        } else if (!has_b || b >= info->size) {
          b = info->size - 1;
        }
        if (a >= info->size || b < a || (!has_a && b == 0 && info->size == 0)) {
          auto error = oci_error(
              "BLOB_UNKNOWN",
              "range " + std::string(*range) + " is outside the blob's " + std::to_string(info->size) + " bytes", 416);
          error.headers.set("Content-Range", "bytes */" + std::to_string(info->size));
          throw error;
        }
        first = a;
        length = b - a + 1;
        status = 206;
      }
    }
    auto response = empty_response(status);
    response.headers.set("Content-Type", "application/octet-stream");
    response.headers.set("Docker-Content-Digest", digest.to_string());
    response.headers.set("ETag", "\"" + digest.to_string() + "\"");
    response.headers.set("Accept-Ranges", "bytes");
    response.headers.set("Cache-Control", "max-age=31536000");
    if (status == 206)
      response.headers.set("Content-Range", "bytes " + std::to_string(first) + "-" +
                                                std::to_string(first + length - 1) + "/" + std::to_string(info->size));
    if (request.method == Method::head) {
      response.headers.set("Content-Length", std::to_string(length));
      return response;
    }
    File blob = open_blob(*info);
    // Blobs were written around the page cache; read big ones with the kernel's widest readahead.
    if (length > 1024 * 1024)
      ::posix_fadvise(blob.fd(), static_cast<off_t>(first), static_cast<off_t>(length), POSIX_FADV_SEQUENTIAL);
    response.body = std::make_unique<FileSource>(std::move(blob), first, length);
    response.stream_length = length;
    return response;
  }

  // The blob's file; garbage collection may be moving it aside and back just now (Storage::gc_trash_path).
  File open_blob(BlobInfo const& info) const {
    for (auto const& path : {info.path, storage_.gc_trash_path(info.path)}) try {
        return File(path, O_RDONLY);
      } catch (Error const&) {
      }
    return File(info.path, O_RDONLY);
  }

  Response blob_created(std::string const& name, Digest const& digest) {
    auto response = empty_response(201);
    response.headers.set("Location", "/v2/" + name + "/blobs/" + digest.to_string());
    response.headers.set("Docker-Content-Digest", digest.to_string());
    return response;
  }

  Response upload_accepted(int status, std::string const& name, std::string const& id, std::uint64_t size) {
    auto response = empty_response(status);
    response.headers.set("Location", "/v2/" + name + "/blobs/uploads/" + id);
    response.headers.set("Range", range_header(size));
    response.headers.set("Docker-Upload-UUID", id);
    return response;
  }

  Reply start_upload(Request const& request, std::string const& name) {
    if (auto mount = request.query_param("mount")) {
      auto digest = parse_digest_or_throw(*mount);
      if (storage_.find_blob(name, digest)) return blob_created(name, digest);
      auto from = request.query_param("from");
      // Mount only from a repository that is itself valid and holds the blob; otherwise the
      // spec says to fall back to a normal upload.
      if (from && is_valid_repository_name(*from) && storage_.find_blob(*from, digest)) {
        check_repository(*from);
        if (storage_.link_blob(name, digest)) return blob_created(name, digest);
      }
    }
    auto id = storage_.start_upload(name);
    if (auto digest_text = request.query_param("digest")) {
      // Monolithic upload: the whole blob is this request's body.
      auto digest = parse_digest_or_throw(*digest_text);
      auto writer = storage_.open_upload(name, id);
      auto finish = [this, name, digest](UploadWriter& writer) {
        writer.commit(digest);
        return blob_created(name, digest);
      };
      auto abandon = [this, name, id] { storage_.cancel_upload(name, id); };
      auto sink = std::make_unique<UploadSink>(std::move(writer), finish, abandon);
      if (request.has_body) return sink;
      return sink->finish();
    }
    return upload_accepted(202, name, id, 0);
  }

  Reply upload(Request const& request, std::string const& name, std::string const& id) {
    auto unknown = [&] { return oci_error("BLOB_UPLOAD_UNKNOWN", "upload " + id + " is not known in " + name); };
    switch (request.method) {
      case Method::get: {
        auto size = storage_.upload_size(name, id);
        if (!size) throw unknown();
        return upload_accepted(204, name, id, *size);
      }
      case Method::delete_:
        if (!storage_.cancel_upload(name, id)) throw unknown();
        return empty_response(204);
      case Method::patch:
      case Method::put: break;
      default: require(request, {Method::get, Method::patch, Method::put, Method::delete_});
    }

    std::optional<std::uint64_t> offset;
    if (auto content_range = request.headers.get("Content-Range")) {
      auto range = parse_content_range(*content_range);
      if (!range)
        throw oci_error("BLOB_UPLOAD_INVALID", "malformed Content-Range \"" + std::string(*content_range) + "\"", 416);
      if (request.content_length && *request.content_length != range->second - range->first + 1)
        throw oci_error("BLOB_UPLOAD_INVALID",
                        "Content-Range " + std::string(*content_range) + " does not match Content-Length " +
                            std::to_string(*request.content_length),
                        416);
      offset = range->first;
    }
    std::optional<Digest> digest;
    if (request.method == Method::put) {
      auto text = request.query_param("digest");
      if (!text) throw oci_error("DIGEST_INVALID", "completing an upload needs ?digest=<digest>");
      digest = parse_digest_or_throw(*text);
    }
    auto writer = storage_.open_upload(name, id, offset);
    if (!writer) throw unknown();
    std::function<Response(UploadWriter&)> finish;
    if (digest)
      finish = [this, name, digest = *digest](UploadWriter& writer) {
        writer.commit(digest);
        return blob_created(name, digest);
      };
    else
      finish = [this, name, id](UploadWriter& writer) {
        writer.flush();  // the Range we answer must be on disk
        return upload_accepted(202, name, id, writer.size());
      };
    auto sink = std::make_unique<UploadSink>(std::move(writer), std::move(finish));
    if (request.has_body) return sink;
    return sink->finish();
  }

  // --- manifests ---

  Reply manifest(Request const& request, std::string const& name, std::string const& reference) {
    switch (request.method) {
      case Method::get:
      case Method::head: return get_manifest(request, name, reference);
      case Method::put: break;
      case Method::delete_: return delete_manifest(name, reference);
      default: require(request, {Method::get, Method::head, Method::put, Method::delete_});
    }
    auto digest = Digest::parse(reference);
    if (!digest && !is_valid_tag(reference))
      throw oci_error("MANIFEST_INVALID",
                      "invalid tag \"" + reference + "\": up to 128 letters, digits, _ . -, not starting with . or -");
    auto put = [this, name, reference, digest](Request const& put_request, std::string body) -> Response {
      try {
        return put_manifest(put_request, name, reference, digest, std::move(body));
      } catch (HttpError const&) {
        throw;
      } catch (...) {
        rethrow_as_oci();
      }
    };
    return proxy::buffered(config_.max_manifest_bytes, put)(request);
  }

  Response put_manifest(Request const& request, std::string const& name, std::string const& reference,
                        std::optional<Digest> const& digest, std::string body) {
    auto content_type = request.headers.get("Content-Type").value_or("");
    auto manifest = parse_manifest(body, content_type);
    auto check_blob = [&](Descriptor const& descriptor, std::string const& where) {
      if (!descriptor.urls.empty()) return;  // foreign layer, fetched from its URLs
      auto info = storage_.find_blob(name, descriptor.digest);
      if (!info)
        throw oci_error("MANIFEST_BLOB_UNKNOWN", where + " refers to blob " + descriptor.digest.to_string() +
                                                     ", which is not in repository " + name + "; push it first");
      if (info->size != descriptor.size)
        throw oci_error("MANIFEST_INVALID", where + " says blob " + descriptor.digest.to_string() + " has " +
                                                std::to_string(descriptor.size) + " bytes; it has " +
                                                std::to_string(info->size));
    };
    if (manifest.config) check_blob(*manifest.config, "config");
    for (std::size_t layer_idx = 0; layer_idx < manifest.layers.size(); ++layer_idx)
      check_blob(manifest.layers[layer_idx], "layers[" + std::to_string(layer_idx) + "]");
    for (std::size_t manifest_idx = 0; manifest_idx < manifest.manifests.size(); ++manifest_idx) {
      auto const& child = manifest.manifests[manifest_idx].digest;
      if (!storage_.has_manifest(name, child))
        throw oci_error("MANIFEST_BLOB_UNKNOWN", "manifests[" + std::to_string(manifest_idx) + "] refers to manifest " +
                                                     child.to_string() + ", which is not in repository " + name +
                                                     "; push it first");
    }
    auto algorithm = digest ? digest->algorithm() : DigestAlgorithm::sha256;
    if (digest && digest_of(body, algorithm) != *digest)
      throw oci_error("DIGEST_INVALID",
                      "manifest pushed as " + reference + " has digest " + digest_of(body, algorithm).to_string());
    // Check and write under one lock, so that two pushes racing for a new immutable tag cannot both win.
    std::unique_lock<std::mutex> immutable_lock;
    if (!digest) {
      if (auto rule = immutable_tags_.rule_for(name, reference)) {
        immutable_lock = std::unique_lock(immutable_tags_mutex_);
        auto existing = storage_.resolve_tag(name, reference);
        if (existing && *existing != digest_of(body, algorithm))  // the same manifest again is a harmless retry
          throw immutable_tag_error(name, reference, *rule);
      }
    }
    auto stored =
        storage_.put_manifest(name, body, manifest, digest ? std::nullopt : std::optional(reference), algorithm);
    logger("registry")
        ->info("manifest pushed repo={} reference={} digest={} bytes={}", name, reference, stored.to_string(),
               body.size());
    auto response = empty_response(201);
    response.headers.set("Location", "/v2/" + name + "/manifests/" + stored.to_string());
    response.headers.set("Docker-Content-Digest", stored.to_string());
    if (manifest.subject) response.headers.set("OCI-Subject", manifest.subject->digest.to_string());
    return response;
  }

  Digest resolve(std::string const& name, std::string const& reference) const {
    if (auto digest = Digest::parse(reference)) return *digest;
    // As distribution answers: a reference that cannot name a manifest names none here (404), so
    // clients probing odd references see "not found", not a request error.
    if (!is_valid_tag(reference))
      throw oci_error("MANIFEST_UNKNOWN", "\"" + reference + "\" is neither a tag nor a digest, so no manifest in " +
                                              name + " has it");
    if (auto digest = storage_.resolve_tag(name, reference)) return *digest;
    if (!storage_.repository_exists(name)) throw oci_error("NAME_UNKNOWN", "repository " + name + " is not known");
    throw oci_error("MANIFEST_UNKNOWN", "tag " + reference + " is not in repository " + name);
  }

  Reply get_manifest(Request const& request, std::string const& name, std::string const& reference) {
    auto digest = resolve(name, reference);
    auto stored = storage_.get_manifest(name, digest);
    if (!stored) {
      if (!storage_.repository_exists(name)) throw oci_error("NAME_UNKNOWN", "repository " + name + " is not known");
      throw oci_error("MANIFEST_UNKNOWN", "manifest " + digest.to_string() + " is not in repository " + name);
    }
    auto response = empty_response(200);
    response.headers.set("Content-Type", stored->media_type);
    response.headers.set("Docker-Content-Digest", digest.to_string());
    response.headers.set("ETag", "\"" + digest.to_string() + "\"");
    if (request.method == Method::head)
      response.headers.set("Content-Length", std::to_string(stored->bytes.size()));
    else
      response.body = std::move(stored->bytes);
    return response;
  }

  // The spec has no code for a conflict with the registry's state; DENIED is the one every client
  // prints, and 409 says that credentials would not help.
  static HttpError immutable_tag_error(std::string const& name, std::string const& tag, std::string const& rule) {
    return oci_error("DENIED", ImmutableTags::refusal(name, tag, rule), 409);
  }
  static HttpError immutable_delete_error(std::string const& name, std::string const& tag, std::string const& rule,
                                          std::optional<Digest> const& digest) {
    return oci_error("DENIED",
                     (digest ? "manifest " + digest->to_string() + " is tagged " + name + ":" + tag + ", which is"
                             : "tag " + name + ":" + tag + " is") +
                         " immutable (registry.immutable_tags rule '" + rule + "'); it cannot be deleted",
                     409);
  }

  Reply delete_manifest(std::string const& name, std::string const& reference) {
    require_delete_enabled();
    std::lock_guard immutable_lock(immutable_tags_mutex_);
    if (auto digest = Digest::parse(reference)) {
      // Deleting the manifest would take its tags with it.
      for (auto const& tag : storage_.tags(name).value_or(std::vector<std::string>{}))
        if (auto rule = immutable_tags_.rule_for(name, tag); rule && storage_.resolve_tag(name, tag) == *digest)
          throw immutable_delete_error(name, tag, *rule, digest);
    } else if (auto rule = is_valid_tag(reference) ? immutable_tags_.rule_for(name, reference) : std::nullopt;
               rule && storage_.resolve_tag(name, reference)) {
      throw immutable_delete_error(name, reference, *rule, std::nullopt);
    }
    if (auto digest = Digest::parse(reference)) {
      if (!storage_.delete_manifest(name, *digest))
        throw oci_error("MANIFEST_UNKNOWN", "manifest " + reference + " is not in repository " + name);
    } else if (!is_valid_tag(reference) || !storage_.delete_tag(name, reference)) {
      throw oci_error("MANIFEST_UNKNOWN", "tag " + reference + " is not in repository " + name);
    }
    logger("registry")->info("manifest deleted repo={} reference={}", name, reference);
    return empty_response(202);
  }

  // --- discovery ---

  // One page of `items` (sorted) after `last`, at most `n`; sets the Link header when more follow.
  static nlohmann::json page(std::vector<std::string> const& items, Request const& request, std::string const& path,
                             Response& response) {
    auto n = parse_count(request.query_param("n"));
    auto last = request.query_param("last");
    auto begin = last ? std::upper_bound(items.begin(), items.end(), *last) : items.begin();
    auto count = std::min<std::uint64_t>(n.value_or(items.size()), static_cast<std::uint64_t>(items.end() - begin));
    auto end = begin + static_cast<std::ptrdiff_t>(count);
    auto result = nlohmann::json::array();
    for (auto it = begin; it != end; ++it) result.push_back(*it);
    if (n && end != items.end() && count > 0)
      response.headers.set("Link", "<" + path + "?n=" + std::to_string(*n) + "&last=" + *(end - 1) + ">; rel=\"next\"");
    return result;
  }

  Reply tags(Request const& request, std::string const& name) {
    auto all = storage_.tags(name);
    if (!all) throw oci_error("NAME_UNKNOWN", "repository " + name + " is not known");
    auto response = json_response(200, "");
    auto list = page(*all, request, "/v2/" + name + "/tags/list", response);
    response.body = nlohmann::json{{"name", name}, {"tags", list}}.dump();
    return response;
  }

  Reply catalog(Request const& request) {
    auto response = json_response(200, "");
    auto list = page(storage_.repositories(), request, "/v2/_catalog", response);
    response.body = nlohmann::json{{"repositories", list}}.dump();
    return response;
  }

  Reply referrers(Request const& request, std::string const& name, std::string const& tail) {
    auto subject = parse_digest_or_throw(tail);
    auto filter = request.query_param("artifactType");
    std::string manifests;
    for (auto const& descriptor : storage_.referrers(name, subject)) {
      if (filter) {
        auto parsed = nlohmann::json::parse(descriptor, nullptr, false);
        if (parsed.is_discarded() || parsed.value("artifactType", "") != *filter) continue;
      }
      manifests += (manifests.empty() ? "" : ",") + descriptor;
    }
    auto response = json_response(200, R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                                       R"("manifests":[)" +
                                           manifests + "]}");
    response.headers.set("Content-Type", std::string(media_type::oci_index));
    if (filter) response.headers.set("OCI-Filters-Applied", "artifactType");
    return response;
  }

  Storage& storage_;
  Config const& config_;
  ImmutableTags const immutable_tags_;
  std::mutex immutable_tags_mutex_;  // held across an immutable tag's check and write (or delete)
};

}  // namespace

void add_routes(proxy::Router& router, Storage& storage) {
  // Clients probe /v2/ first to detect a v2 registry and to discover how to authenticate.
  router.add(Method::get, "/v2/", [](Request const&) -> Reply { return json_response(200, "{}"); });
  auto api = std::make_shared<Api>(storage);
  router.add_prefix("/v2/", [api](Request const& request) { return api->handle(request); });
}

}  // namespace berth::registry
