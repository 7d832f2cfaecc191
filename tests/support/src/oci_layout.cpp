#include "berth/testing/oci_layout.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace berth::testing {
namespace {

using ordered_json = nlohmann::ordered_json;
namespace fs = std::filesystem;

class Sha256 {
public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("cannot initialise sha256");
  }
  void update(void const* data, std::size_t size) { EVP_DigestUpdate(context_.get(), data, size); }
  std::string finish() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> raw{};
    unsigned length = 0;
    EVP_DigestFinal_ex(context_.get(), raw.data(), &length);
    static constexpr char hex_digits[] = "0123456789abcdef";
    std::string text = "sha256:";
    for (unsigned byte_idx = 0; byte_idx < length; ++byte_idx) {
      text += hex_digits[raw[byte_idx] >> 4];
      text += hex_digits[raw[byte_idx] & 0xf];
    }
    return text;
  }

private:
  struct Free {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> context_;
};

// A blob being written: bytes go to a temp file in blobs/sha256 while being hashed; commit()
// renames it to its digest, so a half-written blob never has a digest's name.
class BlobWriter {
public:
  explicit BlobWriter(fs::path const& blobs_dir)
      : temp_path_(blobs_dir / (".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))),
        out_(temp_path_, std::ios::binary | std::ios::trunc) {
    if (!out_) throw std::runtime_error("cannot create " + temp_path_.string());
  }
  ~BlobWriter() {
    if (!committed_) {
      std::error_code ignored;
      fs::remove(temp_path_, ignored);
    }
  }
  BlobWriter(BlobWriter const&) = delete;
  BlobWriter& operator=(BlobWriter const&) = delete;

  void write(void const* data, std::size_t size) {
    hash_.update(data, size);
    out_.write(static_cast<char const*>(data), static_cast<std::streamsize>(size));
    size_ += size;
  }

  Blob commit(std::string media_type) {
    out_.close();
    if (!out_) throw std::runtime_error("cannot write " + temp_path_.string());
    auto digest = hash_.finish();
    fs::rename(temp_path_, temp_path_.parent_path() / digest.substr(7));
    committed_ = true;
    return Blob{digest, size_, std::move(media_type), {}};
  }

private:
  static inline std::atomic<std::uint64_t> counter_ = 0;  // unique temp names across layouts
  fs::path temp_path_;
  std::ofstream out_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
  bool committed_ = false;
};

// splitmix64: fast, and the same seed gives the same bytes (on little-endian hosts, i.e. ours).
class Random {
public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  void fill(char* data, std::size_t size) {
    for (std::size_t offset = 0; offset < size; offset += 8) {
      auto word = next();
      std::memcpy(data + offset, &word, std::min<std::size_t>(8, size - offset));
    }
  }

private:
  std::uint64_t state_;
};

struct ArchiveFree {
  void operator()(archive* handle) const { archive_write_free(handle); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

void check(archive* handle, int status, char const* what) {
  if (status < ARCHIVE_WARN) {
    char const* reason = archive_error_string(handle);
    throw std::runtime_error(std::string("libarchive: cannot ") + what + ": " + (reason ? reason : "unknown error"));
  }
}

// The tar stream feeds the gzip stream: the tar writer's output is hashed (the diff_id) and
// passed on as the data of a "raw" gzip archive whose output becomes the blob. Two libarchive
// handles, because libarchive cannot report the bytes between its format and its filter.
struct LayerSink {
  Sha256 tar_hash;
  archive* gzip = nullptr;
  BlobWriter* writer = nullptr;
};

la_ssize_t tar_to_gzip(archive*, void* client, void const* buffer, std::size_t length) {
  auto* sink = static_cast<LayerSink*>(client);
  sink->tar_hash.update(buffer, length);
  auto written = archive_write_data(sink->gzip, buffer, length);
  return written < 0 ? -1 : written;
}

la_ssize_t gzip_to_blob(archive* handle, void* client, void const* buffer, std::size_t length) {
  try {
    static_cast<BlobWriter*>(client)->write(buffer, length);
    return static_cast<la_ssize_t>(length);
  } catch (std::exception const& error) {
    archive_set_error(handle, EIO, "%s", error.what());
    return -1;
  }
}

archive_entry* regular_file(std::string const& name, std::uint64_t size) {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, name.c_str());
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_size(entry, static_cast<la_int64_t>(size));
  archive_entry_set_mtime(entry, 946684800, 0);  // 2000-01-01: fixed, so digests are stable
  archive_entry_set_uid(entry, 0);
  archive_entry_set_gid(entry, 0);
  return entry;
}

ordered_json descriptor(Blob const& blob) {
  return ordered_json{{"mediaType", blob.media_type}, {"digest", blob.digest}, {"size", blob.size}};
}

ordered_json platform_json(Platform const& platform) {
  ordered_json json{{"architecture", platform.architecture}, {"os", platform.os}};
  if (!platform.variant.empty()) json["variant"] = platform.variant;
  return json;
}

// Pretty-printed on purpose: a client or registry that re-serialises a manifest changes its
// bytes and digest, which the round-trip tests then catch.
std::string manifest_text(ordered_json const& json) {
  return json.dump(3) + "\n";
}

std::string read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file_atomically(fs::path const& path, std::string const& text) {
  auto temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + temp.string());
  }
  fs::rename(temp, path);
}

}  // namespace

std::string sha256_digest(std::string_view bytes) {
  Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  return hash.finish();
}

OciLayout::OciLayout(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_ / "blobs" / "sha256");
  if (!fs::exists(dir_ / "oci-layout"))
    write_file_atomically(dir_ / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
  if (!fs::exists(dir_ / "index.json")) {
    ordered_json index{
        {"schemaVersion", 2}, {"mediaType", media_type::oci_index}, {"manifests", ordered_json::array()}};
    write_file_atomically(dir_ / "index.json", index.dump());
  }
}

Blob OciLayout::add_blob(std::string_view bytes, std::string media_type) {
  BlobWriter writer(dir_ / "blobs" / "sha256");
  writer.write(bytes.data(), bytes.size());
  return writer.commit(std::move(media_type));
}

Blob OciLayout::add_layer(std::uint64_t size, std::uint64_t seed, MediaTypes media_types) {
  BlobWriter writer(dir_ / "blobs" / "sha256");
  LayerSink sink;
  sink.writer = &writer;

  ArchivePtr gzip(archive_write_new());
  check(gzip.get(), archive_write_set_format_raw(gzip.get()), "select raw format");
  check(gzip.get(), archive_write_add_filter_gzip(gzip.get()), "add gzip filter");
  // No timestamp in the gzip header (same seed, same digest); level 1 because the payload is
  // random and would not shrink at any level.
  check(gzip.get(), archive_write_set_filter_option(gzip.get(), "gzip", "timestamp", nullptr), "drop gzip timestamp");
  check(gzip.get(), archive_write_set_filter_option(gzip.get(), "gzip", "compression-level", "1"), "set gzip level");
  check(gzip.get(), archive_write_set_bytes_in_last_block(gzip.get(), 1), "disable block padding");
  check(gzip.get(), archive_write_open(gzip.get(), &writer, nullptr, gzip_to_blob, nullptr), "open gzip stream");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> raw_entry(regular_file("layer.tar", 0),
                                                                          archive_entry_free);
  archive_entry_unset_size(raw_entry.get());
  check(gzip.get(), archive_write_header(gzip.get(), raw_entry.get()), "start gzip stream");
  sink.gzip = gzip.get();

  ArchivePtr tar(archive_write_new());
  check(tar.get(), archive_write_set_format_pax_restricted(tar.get()), "select tar format");
  check(tar.get(), archive_write_set_bytes_per_block(tar.get(), 10240), "set tar block size");
  check(tar.get(), archive_write_open(tar.get(), &sink, nullptr, tar_to_gzip, nullptr), "open tar stream");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(
      regular_file("layer-" + std::to_string(seed) + ".bin", size), archive_entry_free);
  check(tar.get(), archive_write_header(tar.get(), entry.get()), "write tar header");

  Random random(seed);
  std::vector<char> chunk(1 << 20);
  for (std::uint64_t left = size; left > 0;) {
    auto take = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    random.fill(chunk.data(), take);
    if (archive_write_data(tar.get(), chunk.data(), take) != static_cast<la_ssize_t>(take))
      check(tar.get(), ARCHIVE_FATAL, "write tar data");
    left -= take;
  }
  check(tar.get(), archive_write_close(tar.get()), "finish tar stream");
  check(gzip.get(), archive_write_close(gzip.get()), "finish gzip stream");

  auto blob = writer.commit(media_types == MediaTypes::docker ? media_type::docker_layer : media_type::oci_layer);
  blob.diff_id = sink.tar_hash.finish();
  return blob;
}

Blob OciLayout::add_config(std::vector<Blob> const& layers, Platform const& platform, MediaTypes media_types) {
  ordered_json diff_ids = ordered_json::array();
  ordered_json history = ordered_json::array();
  for (auto const& layer : layers) {
    if (layer.diff_id.empty()) throw std::invalid_argument("layer " + layer.digest + " has no diff_id");
    diff_ids.push_back(layer.diff_id);
    history.push_back({{"created", "2000-01-01T00:00:00Z"}, {"created_by", "berth test layer " + layer.digest}});
  }
  ordered_json config{
      {"created", "2000-01-01T00:00:00Z"}, {"architecture", platform.architecture}, {"os", platform.os}};
  if (!platform.variant.empty()) config["variant"] = platform.variant;
  config["config"] = {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
                      {"Cmd", {"/bin/sh"}}};
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  config["history"] = history;
  return add_blob(config.dump(),
                  media_types == MediaTypes::docker ? media_type::docker_config : media_type::oci_config);
}

Blob OciLayout::add_image_manifest(Blob const& config, std::vector<Blob> const& layers,
                                   ManifestOptions const& options) {
  bool docker = options.media_types == MediaTypes::docker;
  if (docker && (options.subject || !options.artifact_type.empty()))
    throw std::invalid_argument("docker schema2 manifests have no subject or artifactType");
  auto type = docker ? media_type::docker_manifest : media_type::oci_manifest;
  ordered_json manifest{{"schemaVersion", 2}, {"mediaType", type}};
  if (!options.artifact_type.empty()) manifest["artifactType"] = options.artifact_type;
  manifest["config"] = descriptor(config);
  manifest["layers"] = ordered_json::array();
  for (auto const& layer : layers) manifest["layers"].push_back(descriptor(layer));
  if (options.subject) manifest["subject"] = descriptor(*options.subject);
  if (!options.annotations.empty()) manifest["annotations"] = options.annotations;
  return add_blob(manifest_text(manifest), type);
}

Blob OciLayout::add_index(std::vector<std::pair<Blob, Platform>> const& manifests, MediaTypes media_types) {
  auto type = media_types == MediaTypes::docker ? media_type::docker_list : media_type::oci_index;
  ordered_json index{{"schemaVersion", 2}, {"mediaType", type}, {"manifests", ordered_json::array()}};
  for (auto const& [manifest, platform] : manifests) {
    auto entry = descriptor(manifest);
    entry["platform"] = platform_json(platform);
    index["manifests"].push_back(entry);
  }
  return add_blob(manifest_text(index), type);
}

Blob OciLayout::add_artifact(std::string const& artifact_type, Blob const& subject, std::string_view payload,
                             std::string payload_media_type) {
  auto empty_config = add_blob("{}", media_type::oci_empty);
  auto payload_blob = add_blob(payload, std::move(payload_media_type));
  ManifestOptions options;
  options.subject = subject;
  options.artifact_type = artifact_type;
  return add_image_manifest(empty_config, {payload_blob}, options);
}

Image OciLayout::add_image(std::vector<std::uint64_t> const& layer_sizes, std::uint64_t seed, MediaTypes media_types,
                           Platform const& platform) {
  Image image;
  for (std::size_t layer_idx = 0; layer_idx < layer_sizes.size(); ++layer_idx)
    image.layers.push_back(add_layer(layer_sizes[layer_idx], seed * 1000003 + layer_idx, media_types));
  image.config = add_config(image.layers, platform, media_types);
  ManifestOptions options;
  options.media_types = media_types;
  image.manifest = add_image_manifest(image.config, image.layers, options);
  return image;
}

void OciLayout::tag(Blob const& manifest, std::string const& tag) {
  auto index = ordered_json::parse(read_file(dir_ / "index.json"));
  auto& entries = index["manifests"];
  static constexpr char ref_name[] = "org.opencontainers.image.ref.name";
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](ordered_json const& entry) {
                                 return entry.contains("annotations") &&
                                        entry["annotations"].value(ref_name, "") == tag;
                               }),
                entries.end());
  auto entry = descriptor(manifest);
  entry["annotations"] = {{ref_name, tag}};
  entries.push_back(entry);
  write_file_atomically(dir_ / "index.json", index.dump());
}

fs::path OciLayout::blob_path(std::string_view digest) const {
  if (!digest.starts_with("sha256:")) throw std::invalid_argument("not a sha256 digest: " + std::string(digest));
  return dir_ / "blobs" / "sha256" / digest.substr(7);
}

std::string OciLayout::read_blob(std::string_view digest) const {
  return read_file(blob_path(digest));
}

void OciLayout::export_dir(Blob const& manifest, fs::path const& dir) const {
  fs::create_directories(dir);
  write_file_atomically(dir / "version", "Directory Transport Version: 1.1\n");
  // Blobs may be hundreds of MiB, so they are hard-linked; manifests are copied, so a test
  // that edits an exported manifest cannot corrupt the layout.
  auto link_blob = [&](std::string const& digest) {
    auto target = dir / digest.substr(7);
    if (fs::exists(target)) return;
    std::error_code link_failed;
    fs::create_hard_link(blob_path(digest), target, link_failed);
    if (link_failed) fs::copy_file(blob_path(digest), target);
  };
  auto export_manifest = [&](auto& self, std::string const& digest, fs::path const& target) -> void {
    auto bytes = read_blob(digest);
    write_file_atomically(target, bytes);
    auto json = nlohmann::json::parse(bytes);
    for (auto const& child : json.value("manifests", nlohmann::json::array())) {
      std::string child_digest = child.at("digest");
      self(self, child_digest, dir / (child_digest.substr(7) + ".manifest.json"));
    }
    if (json.contains("config")) link_blob(json["config"].at("digest"));
    for (auto const& layer : json.value("layers", nlohmann::json::array())) link_blob(layer.at("digest"));
  };
  export_manifest(export_manifest, manifest.digest, dir / "manifest.json");
}

RunResult skopeo(std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/skopeo", "--insecure-policy"});
  return run(std::move(args));
}

}  // namespace berth::testing
