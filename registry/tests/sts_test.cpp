// STS AssumeRole without a network: the request body and its signature, the endpoints the
// CLI would pick, and the strict XML reader on real-shaped answers, error answers and hostile
// or broken documents.
#include "berth/registry/sts.hpp"

#include <gtest/gtest.h>

#include "berth/core/error.hpp"

using namespace berth::registry;

namespace {

std::string const good_response = R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>DevUser123</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>
       AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW
       LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGd
      </SessionToken>
      <Expiration>2019-07-15T23:28:33.359Z</Expiration>
    </Credentials>
    <PackedPolicySize>8</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
)";

std::string error_of(std::string_view xml) {
  try {
    sts::parse_assume_role_response(xml);
  } catch (berth::Error const& error) {
    return error.what();
  }
  return "no error";
}

std::string xml_error_of(std::string_view xml) {
  try {
    sts::parse_xml(xml);
  } catch (berth::Error const& error) {
    return error.what();
  }
  return "no error";
}

std::string with_credentials(std::string const& credentials) {
  return "<AssumeRoleResponse><AssumeRoleResult><Credentials>" + credentials +
         "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
}

std::string const all_fields =
    "<AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"
    "<Expiration>2026-11-28T03:00:00Z</Expiration>";

}  // namespace

TEST(StsResponse, ReadsTheCredentialsOfARealShapedAnswer) {
  auto const role = sts::parse_assume_role_response(good_response);
  EXPECT_EQ(role.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(role.credentials.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
  EXPECT_EQ(role.credentials.session_token,
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW\n"
            "       LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGd");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(role.expiration), 1563233313);  // 2019-07-15T23:28:33Z
  EXPECT_EQ(role.assumed_role_arn, "arn:aws:sts::123456789012:assumed-role/demo/John");
}

TEST(StsResponse, DecodesEntitiesCdataAndSkipsCommentsAndTheDeclaration) {
  auto const role = sts::parse_assume_role_response(
      "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- from STS -->\n"
      "<AssumeRoleResponse a='1' b = \"x&amp;y\"><AssumeRoleResult><Credentials>"
      "<AccessKeyId>ASIA<!-- c -->2</AccessKeyId><SecretAccessKey>a&lt;b&gt;c&amp;d&quot;&apos;&#65;&#x42;&#xe9;"
      "</SecretAccessKey><SessionToken><![CDATA[t<o>k&]]></SessionToken>"
      "<Expiration>2026-11-28T04:00:00+01:00</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse >");
  EXPECT_EQ(role.credentials.access_key_id, "ASIA2");
  EXPECT_EQ(role.credentials.secret_access_key, "a<b>c&d\"'AB\xC3\xA9");
  EXPECT_EQ(role.credentials.session_token, "t<o>k&");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(role.expiration), 1795834800);  // 03:00Z
  EXPECT_EQ(role.assumed_role_arn, "");
}

TEST(StsResponse, NamesWhatIsMissingOrRepeatedWithoutQuotingSecrets) {
  std::string const hint = "\nHINT: check that the STS endpoint (AWS_ENDPOINT_URL_STS, if set) is AWS STS.";
  EXPECT_EQ(error_of("<GetCallerIdentityResponse/>"),
            "cannot read the STS AssumeRole response: the root element is <GetCallerIdentityResponse>, not "
            "<AssumeRoleResponse>" +
                hint);
  EXPECT_EQ(error_of("<AssumeRoleResponse><ResponseMetadata/></AssumeRoleResponse>"),
            "cannot read the STS AssumeRole response: <AssumeRoleResult> is missing" + hint);
  EXPECT_EQ(error_of(with_credentials("<AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>TOPSECRET</SecretAccessKey>"
                                      "<Expiration>2026-11-28T03:00:00Z</Expiration>")),
            "cannot read the STS AssumeRole response: <SessionToken> is missing or empty" + hint);
  EXPECT_EQ(
      error_of(with_credentials(all_fields + "<SecretAccessKey>TOPSECRET2</SecretAccessKey>")),
      "cannot read the STS AssumeRole response: <SecretAccessKey> appears more than once in <Credentials>" + hint);
  EXPECT_EQ(error_of(with_credentials("<AccessKeyId>  </AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                                      "<SessionToken>t</SessionToken><Expiration>2026-11-28T03:00:00Z</Expiration>")),
            "cannot read the STS AssumeRole response: <AccessKeyId> is missing or empty" + hint);
  EXPECT_EQ(error_of(with_credentials("<AccessKeyId><b>x</b></AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                                      "<SessionToken>t</SessionToken><Expiration>2026-11-28T03:00:00Z</Expiration>")),
            "cannot read the STS AssumeRole response: <AccessKeyId> is missing or empty" + hint);
  EXPECT_EQ(error_of(with_credentials("<AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                                      "<SessionToken>t</SessionToken><Expiration>soon</Expiration>")),
            "cannot read the STS AssumeRole response: <Expiration> 'soon' is not an RFC 3339 time" + hint);
  EXPECT_EQ(error_of(with_credentials(all_fields + "</Credentials>")),
            "cannot read the STS AssumeRole response: malformed XML at byte 221: closing tag does not match "
            "<AssumeRoleResult>" +
                hint);
  auto const leaked = error_of(with_credentials(all_fields).substr(0, 120));
  EXPECT_EQ(leaked.find("TOPSECRET"), std::string::npos);
  EXPECT_TRUE(leaked.starts_with("cannot read the STS AssumeRole response: malformed XML at byte 120: expected a name"))
      << leaked;
}

TEST(StsXml, RefusesHostileAndMalformedDocuments) {
  // Entity definitions (billion laughs, external entities) never get a chance: DOCTYPE is refused.
  EXPECT_EQ(xml_error_of("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]><a>&lol;</a>"),
            "malformed XML at byte 21: DOCTYPE and other declarations are not accepted");
  EXPECT_EQ(xml_error_of("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>"),
            "malformed XML at byte 0: DOCTYPE and other declarations are not accepted");
  EXPECT_EQ(xml_error_of("<a>&xxe;</a>"), "malformed XML at byte 3: unknown entity '&xxe;'");
  EXPECT_EQ(xml_error_of("<a>&amp</a>"), "malformed XML at byte 3: unterminated entity reference");
  EXPECT_EQ(xml_error_of("<a>&#0;</a>"), "malformed XML at byte 3: character reference out of range");
  EXPECT_EQ(xml_error_of("<a>&#xD800;</a>"), "malformed XML at byte 3: character reference out of range");
  EXPECT_EQ(xml_error_of("<a>&#x110000;</a>"), "malformed XML at byte 3: character reference out of range");
  EXPECT_EQ(xml_error_of("<a>&#12a;</a>"), "malformed XML at byte 3: bad character reference");
  EXPECT_EQ(xml_error_of("<a><?php x ?></a>"),
            "malformed XML at byte 3: declarations and processing instructions are not accepted inside elements");
  EXPECT_EQ(xml_error_of("<?pi?><a/>"), "malformed XML at byte 0: processing instructions are not accepted");
  EXPECT_EQ(xml_error_of("<<"), "malformed XML at byte 1: expected a name");
  std::string deep;
  for (int level = 0; level < 40; ++level) deep += "<a>";
  EXPECT_EQ(xml_error_of(deep), "malformed XML at byte 96: elements nested deeper than 32 levels");
  EXPECT_EQ(xml_error_of("<a>" + std::string(sts::max_response_bytes, 'x') + "</a>"),
            "malformed XML at byte 0: the document is larger than 262144 bytes");
  EXPECT_EQ(xml_error_of(""), "malformed XML at byte 0: expected the root element");
  EXPECT_EQ(xml_error_of("not xml"), "malformed XML at byte 0: expected the root element");
  EXPECT_EQ(xml_error_of("<a></b>"), "malformed XML at byte 6: closing tag does not match <a>");
  EXPECT_EQ(xml_error_of("<a>"), "malformed XML at byte 3: element <a> is not closed");
  EXPECT_EQ(xml_error_of("<a/><b/>"), "malformed XML at byte 4: content after the root element");
  EXPECT_EQ(xml_error_of("<a/>trailing"), "malformed XML at byte 4: content after the root element");
  EXPECT_EQ(xml_error_of("<a x=1/>"), "malformed XML at byte 5: expected a quoted attribute value");
  EXPECT_EQ(xml_error_of("<a x=\"1\"y=\"2\"/>"), "malformed XML at byte 8: expected whitespace before an attribute");
  EXPECT_EQ(xml_error_of("<a x=\"<\"/>"), "malformed XML at byte 6: '<' in an attribute value");
  EXPECT_EQ(xml_error_of("<a x=\"1"), "malformed XML at byte 7: expected '\"'");
  EXPECT_EQ(xml_error_of("<a><!-- open </a>"), "malformed XML at byte 3: unterminated comment");
  EXPECT_EQ(xml_error_of("<a><![CDATA[x</a>"), "malformed XML at byte 3: unterminated CDATA section");
  EXPECT_EQ(xml_error_of("<a>]]></a>"), "malformed XML at byte 3: ']]>' in character data");
  EXPECT_EQ(xml_error_of("<?xml version=\"1.0\""), "malformed XML at byte 0: unterminated XML declaration");
  EXPECT_EQ(xml_error_of(std::string("<a>\0</a>", 8)), "no error");  // bytes are data; fields are checked later
}

TEST(StsError, ReadsCodeAndMessageAndToleratesAnythingElse) {
  auto const denied = sts::parse_error_response(
      R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::111111111111:user/ci is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/promote</Message>
  </Error>
  <RequestId>4ed7e0f4-1111-2222-3333-444444444444</RequestId>
</ErrorResponse>)");
  EXPECT_EQ(denied.code, "AccessDenied");
  EXPECT_EQ(denied.message,
            "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: sts:AssumeRole on resource: "
            "arn:aws:iam::222222222222:role/promote");
  auto const no_message =
      sts::parse_error_response("<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>");
  EXPECT_EQ(no_message.code, "Throttling");
  EXPECT_EQ(no_message.message, "");
  for (std::string_view body : {"", "<html><body>502 Bad Gateway</body></html>", "{\"__type\":\"x\"}",
                                "<ErrorResponse><Error><Code>A</Code><Code>B</Code></Error></ErrorResponse>",
                                "<ErrorResponse><Error><Code>A</Code>", "<!DOCTYPE x><ErrorResponse/>"}) {
    auto const error = sts::parse_error_response(body);
    EXPECT_EQ(error.code, "") << body;
    EXPECT_EQ(error.message, "") << body;
  }
}

TEST(StsRequest, FormEncodesTheParametersAndSignsForSts) {
  sts::AssumeRoleParameters parameters{.role_arn = "arn:aws:iam::222222222222:role/team/promote",
                                       .session_name = "berth-promote-1795800000",
                                       .external_id = "ext:id/with+chars=",
                                       .duration_seconds = 900};
  EXPECT_EQ(sts::assume_role_body(parameters),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fteam%2Fpromote"
            "&RoleSessionName=berth-promote-1795800000&ExternalId=ext%3Aid%2Fwith%2Bchars%3D&DurationSeconds=900");
  EXPECT_EQ(sts::assume_role_body({.role_arn = "arn:aws:iam::1:role/r", .session_name = "s1"}),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s1");

  auto const time = std::chrono::system_clock::from_time_t(1795795200);  // 2026-11-27T16:00:00Z
  auto const request = sts::sign_assume_role(parameters, {"https://sts.eu-west-1.amazonaws.com/", "eu-west-1"},
                                             {"AKIDEXAMPLE", "secret", "session-token"}, time);
  EXPECT_EQ(request.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_EQ(request.body, sts::assume_role_body(parameters));
  ASSERT_EQ(request.headers.size(), 5u);
  EXPECT_EQ(request.headers[0], (sigv4::Header{"Host", "sts.eu-west-1.amazonaws.com"}));
  EXPECT_EQ(request.headers[1], (sigv4::Header{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}));
  EXPECT_EQ(request.headers[2], (sigv4::Header{"X-Amz-Date", "20261127T160000Z"}));
  EXPECT_EQ(request.headers[3], (sigv4::Header{"X-Amz-Security-Token", "session-token"}));
  EXPECT_EQ(request.headers[4].name, "Authorization");
  EXPECT_TRUE(request.headers[4].value.starts_with(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/eu-west-1/sts/aws4_request, "
      "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="))
      << request.headers[4].value;
  // The same signature the signer gives for the same request (the stand-in recomputes it this way).
  auto const expected =
      sigv4::sign({"POST", "/", {request.headers[0], request.headers[1]}, request.body},
                  {"AKIDEXAMPLE", "secret", "session-token"}, {.region = "eu-west-1", .service = "sts"}, time);
  EXPECT_EQ(request.headers[4].value, expected.authorization);

  auto const custom =
      sts::sign_assume_role(parameters, {"https://127.0.0.1:8443", "eu-west-1"}, {"AKIDEXAMPLE", "secret", ""}, time);
  EXPECT_EQ(custom.headers[0], (sigv4::Header{"Host", "127.0.0.1:8443"}));
  EXPECT_EQ(custom.headers.size(), 4u);  // no session token
}

TEST(StsEndpoint, RegionalByDefaultGlobalForLegacyRegionsAndWithoutARegion) {
  auto const regional = sts::default_endpoint("eu-west-1", true);
  EXPECT_EQ(regional.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_EQ(regional.region, "eu-west-1");
  EXPECT_EQ(sts::default_endpoint("eu-west-1", false).url, "https://sts.amazonaws.com/");
  EXPECT_EQ(sts::default_endpoint("eu-west-1", false).region, "us-east-1");
  EXPECT_EQ(sts::default_endpoint("af-south-1", false).url, "https://sts.af-south-1.amazonaws.com/");
  EXPECT_EQ(sts::default_endpoint(std::nullopt, true).url, "https://sts.amazonaws.com/");
  EXPECT_EQ(sts::default_endpoint("cn-north-1", true).url, "https://sts.cn-north-1.amazonaws.com.cn/");
  EXPECT_THROW(sts::default_endpoint("evil.example/x", true), berth::Error);
}
