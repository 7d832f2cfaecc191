// STS AssumeRole without an SDK: the Query API request (form-encoded, signed with SigV4) and a
// small strict XML reader for its answers. STS answers are machine-written and tiny, so the
// reader supports only what they use (elements, attributes, character data, the predefined and
// numeric entities, CDATA, comments) and refuses the rest instead of guessing.
#include "berth/registry/sts.hpp"

#include <algorithm>
#include <array>

#include "berth/core/error.hpp"
#include "berth/registry/aws_credentials.hpp"
#include "berth/registry/http_client.hpp"

namespace berth::registry::sts {
namespace {

constexpr int max_depth = 32;

bool is_region_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// Regions the global endpoint serves when sts_regional_endpoints = legacy (botocore's list).
constexpr std::array<std::string_view, 16> legacy_global_regions = {
    "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "aws-global", "ca-central-1",
    "eu-central-1",   "eu-north-1", "eu-west-1",      "eu-west-2",      "eu-west-3",  "sa-east-1",
    "us-east-1",      "us-east-2",  "us-west-1",      "us-west-2"};

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void append_utf8(std::string& out, unsigned long code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

class XmlReader {
public:
  explicit XmlReader(std::string_view xml) : xml_(xml) {}

  XmlElement document() {
    if (xml_.size() > max_response_bytes)
      fail("the document is larger than " + std::to_string(max_response_bytes) + " bytes");
    if (xml_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark
    if (xml_.substr(pos_).starts_with("<?xml")) {
      auto const end = xml_.find("?>", pos_);
      if (end == std::string_view::npos) fail("unterminated XML declaration");
      pos_ = end + 2;
    }
    skip_misc();
    if (pos_ >= xml_.size() || xml_[pos_] != '<') fail("expected the root element");
    XmlElement root = element(1);
    skip_misc();
    if (pos_ != xml_.size()) fail("content after the root element");
    return root;
  }

private:
  [[noreturn]] void fail(std::string const& what) const {
    throw Error("malformed XML at byte " + std::to_string(pos_) + ": " + what);
  }

  bool at(std::string_view text) const { return xml_.substr(pos_).starts_with(text); }

  // Whitespace and comments between top-level constructs; DOCTYPE and other processing
  // instructions are refused (entity definitions are the door to expansion attacks).
  void skip_misc() {
    for (;;) {
      while (pos_ < xml_.size() && is_space(xml_[pos_])) ++pos_;
      if (at("<!--")) {
        comment();
      } else if (at("<!")) {
        fail("DOCTYPE and other declarations are not accepted");
      } else if (at("<?")) {
        fail("processing instructions are not accepted");
      } else {
        return;
      }
    }
  }

  void comment() {
    auto const end = xml_.find("-->", pos_ + 4);
    if (end == std::string_view::npos) fail("unterminated comment");
    pos_ = end + 3;
  }

  std::string name() {
    auto const start = pos_;
    if (pos_ >= xml_.size() || !is_name_start(xml_[pos_])) fail("expected a name");
    while (pos_ < xml_.size() && is_name_char(xml_[pos_])) ++pos_;
    return std::string(xml_.substr(start, pos_ - start));
  }

  void expect(char c) {
    if (pos_ >= xml_.size() || xml_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  // "&...;" at pos_, appended decoded.
  void entity(std::string& out) {
    auto const end = xml_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ > 12) fail("unterminated entity reference");
    auto const ref = xml_.substr(pos_ + 1, end - pos_ - 1);
    if (ref == "lt") {
      out.push_back('<');
    } else if (ref == "gt") {
      out.push_back('>');
    } else if (ref == "amp") {
      out.push_back('&');
    } else if (ref == "quot") {
      out.push_back('"');
    } else if (ref == "apos") {
      out.push_back('\'');
    } else if (ref.size() > 1 && ref[0] == '#') {
      bool const hex = ref[1] == 'x';
      auto const digits = ref.substr(hex ? 2 : 1);
      if (digits.empty() || digits.size() > 6) fail("bad character reference");
      unsigned long code_point = 0;
      for (char const c : digits) {
        int digit = -1;
        if (c >= '0' && c <= '9')
          digit = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
          digit = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
          digit = c - 'A' + 10;
        if (digit < 0) fail("bad character reference");
        code_point = code_point * (hex ? 16 : 10) + static_cast<unsigned long>(digit);
      }
      if (code_point == 0 || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF))
        fail("character reference out of range");
      append_utf8(out, code_point);
    } else {
      fail("unknown entity '&" + std::string(ref) + ";'");
    }
    pos_ = end + 1;
  }

  void attributes() {
    for (;;) {
      bool const spaced = pos_ < xml_.size() && is_space(xml_[pos_]);
      while (pos_ < xml_.size() && is_space(xml_[pos_])) ++pos_;
      if (pos_ >= xml_.size()) fail("unterminated start tag");
      if (xml_[pos_] == '>' || xml_[pos_] == '/') return;
      if (!spaced) fail("expected whitespace before an attribute");
      name();
      while (pos_ < xml_.size() && is_space(xml_[pos_])) ++pos_;
      expect('=');
      while (pos_ < xml_.size() && is_space(xml_[pos_])) ++pos_;
      if (pos_ >= xml_.size() || (xml_[pos_] != '"' && xml_[pos_] != '\'')) fail("expected a quoted attribute value");
      char const quote = xml_[pos_++];
      std::string ignored;
      while (pos_ < xml_.size() && xml_[pos_] != quote) {
        if (xml_[pos_] == '<') fail("'<' in an attribute value");
        if (xml_[pos_] == '&')
          entity(ignored);
        else
          ++pos_;
      }
      expect(quote);
    }
  }

  XmlElement element(int depth) {
    if (depth > max_depth) fail("elements nested deeper than " + std::to_string(max_depth) + " levels");
    expect('<');
    XmlElement result;
    result.name = name();
    attributes();
    if (at("/>")) {
      pos_ += 2;
      return result;
    }
    expect('>');
    for (;;) {
      if (pos_ >= xml_.size()) fail("element <" + result.name + "> is not closed");
      char const c = xml_[pos_];
      if (c == '&') {
        entity(result.text);
      } else if (c != '<') {
        if (at("]]>")) fail("']]>' in character data");
        result.text.push_back(c);
        ++pos_;
      } else if (at("</")) {
        pos_ += 2;
        if (name() != result.name) fail("closing tag does not match <" + result.name + ">");
        while (pos_ < xml_.size() && is_space(xml_[pos_])) ++pos_;
        expect('>');
        return result;
      } else if (at("<!--")) {
        comment();
      } else if (at("<![CDATA[")) {
        auto const end = xml_.find("]]>", pos_ + 9);
        if (end == std::string_view::npos) fail("unterminated CDATA section");
        result.text.append(xml_.substr(pos_ + 9, end - pos_ - 9));
        pos_ = end + 3;
      } else if (at("<!") || at("<?")) {
        fail("declarations and processing instructions are not accepted inside elements");
      } else {
        result.children.push_back(element(depth + 1));
      }
    }
  }

  std::string_view xml_;
  std::size_t pos_ = 0;
};

std::string trimmed(std::string const& text) {
  auto const first = std::find_if_not(text.begin(), text.end(), is_space);
  auto const last = std::find_if_not(text.rbegin(), text.rend(), is_space).base();
  return first < last ? std::string(first, last) : std::string();
}

// A response that is XML but not an AssumeRole answer (kept apart from the parser's errors).
class BadResponse : public Error {
public:
  using Error::Error;
};

[[noreturn]] void bad_response(std::string const& what) {
  throw BadResponse("cannot read the STS AssumeRole response: " + what +
                    "\nHINT: check that the STS endpoint (AWS_ENDPOINT_URL_STS, if set) is AWS STS.");
}

}  // namespace

XmlElement const* XmlElement::child(std::string_view wanted) const {
  XmlElement const* found = nullptr;
  for (auto const& element : children) {
    if (element.name != wanted) continue;
    if (found != nullptr) throw Error("<" + std::string(wanted) + "> appears more than once in <" + name + ">");
    found = &element;
  }
  return found;
}

XmlElement parse_xml(std::string_view xml) {
  return XmlReader(xml).document();
}

Endpoint default_endpoint(std::optional<std::string> const& region, bool regional) {
  if (!region || region->empty() ||
      (!regional &&
       std::find(legacy_global_regions.begin(), legacy_global_regions.end(), *region) != legacy_global_regions.end())) {
    return {"https://sts.amazonaws.com/", "us-east-1"};
  }
  if (region->size() > 32 || !std::all_of(region->begin(), region->end(), is_region_char)) {
    throw Error("invalid AWS region '" + *region +
                "': expected lowercase letters, digits and '-'\nHINT: use a region name such as eu-west-1.");
  }
  auto const suffix = region->starts_with("cn-") ? ".amazonaws.com.cn/" : ".amazonaws.com/";
  return {"https://sts." + *region + suffix, *region};
}

std::string assume_role_body(AssumeRoleParameters const& parameters) {
  std::string body = "Action=AssumeRole&Version=" + std::string(api_version) +
                     "&RoleArn=" + sigv4::uri_encode(parameters.role_arn, false) +
                     "&RoleSessionName=" + sigv4::uri_encode(parameters.session_name, false);
  if (!parameters.external_id.empty()) body += "&ExternalId=" + sigv4::uri_encode(parameters.external_id, false);
  if (parameters.duration_seconds) body += "&DurationSeconds=" + std::to_string(*parameters.duration_seconds);
  return body;
}

SignedRequest sign_assume_role(AssumeRoleParameters const& parameters, Endpoint const& endpoint,
                               sigv4::Credentials const& credentials, std::chrono::system_clock::time_point time) {
  auto const url = http::Url::parse(endpoint.url);
  SignedRequest request;
  request.url = endpoint.url;
  request.body = assume_role_body(parameters);
  request.headers = {{"Host", url.authority()}, {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  auto signature = sigv4::sign({"POST", url.target, request.headers, request.body}, credentials,
                               {.region = endpoint.region, .service = std::string(signing_name)}, time);
  for (auto& header : signature.headers_to_add) request.headers.push_back(std::move(header));
  return request;
}

AssumedRole parse_assume_role_response(std::string_view xml) {
  XmlElement root;
  try {
    root = parse_xml(xml);
  } catch (Error const& error) {
    bad_response(error.what());
  }
  try {
    if (root.name != "AssumeRoleResponse")
      bad_response("the root element is <" + root.name + ">, not <AssumeRoleResponse>");
    auto const* result = root.child("AssumeRoleResult");
    if (result == nullptr) bad_response("<AssumeRoleResult> is missing");
    auto const* credentials = result->child("Credentials");
    if (credentials == nullptr) bad_response("<Credentials> is missing");
    auto field = [&](char const* name) {
      auto const* element = credentials->child(name);
      if (element == nullptr || !element->children.empty() || trimmed(element->text).empty())
        bad_response("<" + std::string(name) + "> is missing or empty");
      return trimmed(element->text);
    };
    AssumedRole role;
    role.credentials = {field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken")};
    auto const expiration_text = field("Expiration");
    auto const expiration = aws::parse_rfc3339(expiration_text);
    if (!expiration) bad_response("<Expiration> '" + expiration_text + "' is not an RFC 3339 time");
    role.expiration = *expiration;
    if (auto const* user = result->child("AssumedRoleUser")) {
      if (auto const* arn = user->child("Arn")) role.assumed_role_arn = trimmed(arn->text);
    }
    return role;
  } catch (BadResponse const&) {
    throw;
  } catch (Error const& error) {
    bad_response(error.what());  // a repeated element
  }
}

ServiceError parse_error_response(std::string_view xml) {
  ServiceError error;
  try {
    auto const root = parse_xml(xml);
    if (root.name != "ErrorResponse") return error;
    auto const* body = root.child("Error");
    if (body == nullptr) return error;
    if (auto const* code = body->child("Code")) error.code = trimmed(code->text);
    if (auto const* message = body->child("Message")) error.message = trimmed(message->text);
  } catch (Error const&) {
    return {};
  }
  return error;
}

}  // namespace berth::registry::sts
