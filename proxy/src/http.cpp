// Plain parts of the HTTP vocabulary: headers, query parameters, JSON errors, buffered().
#include "berth/proxy/http.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace berth::proxy {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query strings use '+' for space and %XX escapes; a malformed escape is kept literally.
std::string decode_query_component(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

class BufferingSink final : public BodySink {
public:
  using Handle = std::function<Response(Request const&, std::string)>;
  BufferingSink(Request request, std::size_t max_bytes, std::shared_ptr<Handle const> handle)
      : request_(std::move(request)), max_bytes_(max_bytes), handle_(handle) {}

  void write(std::span<char const> chunk) override {
    if (body_.size() + chunk.size() > max_bytes_) throw too_large(max_bytes_);
    body_.append(chunk.data(), chunk.size());
  }
  Response finish() override { return (*handle_)(request_, std::move(body_)); }

  static HttpError too_large(std::size_t max_bytes) {
    return HttpError(413, "SIZE_INVALID", "request body exceeds the limit of " + std::to_string(max_bytes) + " bytes");
  }

private:
  Request request_;
  std::size_t max_bytes_;
  std::shared_ptr<Handle const> handle_;
  std::string body_;
};

}  // namespace

std::string_view to_string(Method method) {
  switch (method) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::delete_: return "DELETE";
    case Method::options: return "OPTIONS";
    case Method::other: break;
  }
  return "OTHER";
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (auto const& [field, value] : fields_)
    if (iequals(field, name)) return value;
  return std::nullopt;
}

void Headers::set(std::string_view name, std::string value) {
  erase(name);
  fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::add(std::string_view name, std::string value) {
  fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::erase(std::string_view name) {
  std::erase_if(fields_, [&](auto const& field) { return iequals(field.first, name); });
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = decode_query_component(pair.substr(0, eq));
    if (key != name) continue;
    return eq == std::string_view::npos ? std::string{} : decode_query_component(pair.substr(eq + 1));
  }
  return std::nullopt;
}

Response json_response(int status, std::string body) {
  Response response;
  response.status = status;
  response.headers.set("Content-Type", "application/json");
  response.body = std::move(body);
  return response;
}

Response error_response(HttpError const& error) {
  nlohmann::json envelope = {{"errors", nlohmann::json::array({{{"code", error.code()}, {"message", error.what()}}})}};
  auto response = json_response(error.status(), envelope.dump() + "\n");
  for (auto const& [name, value] : error.headers) response.headers.add(name, value);
  return response;
}

Handler buffered(std::size_t max_bytes, std::function<Response(Request const&, std::string)> handle) {
  auto shared = std::make_shared<BufferingSink::Handle const>(std::move(handle));
  return [max_bytes, shared](Request const& request) -> Reply {
    if (request.content_length && *request.content_length > max_bytes) throw BufferingSink::too_large(max_bytes);
    if (!request.has_body) return (*shared)(request, std::string{});
    return std::make_unique<BufferingSink>(request, max_bytes, shared);
  };
}

}  // namespace berth::proxy
