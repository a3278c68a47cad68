#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/clock.h"
#include "common/log.h"
#include "common/token.h"
// After every C++ header: it brings in cmocka.h.
#include "tests/cmocka/edge_harness.h"

namespace wsfleet::testing {
namespace {

constexpr const char* kSecret = "cmocka-hs256-secret-0123456789abcdef";

std::string tomlString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// A port no one listens on now. The edge binds its WebSocket port with SO_REUSEPORT, so
// a fixed port could be shared with (and steal connections from) another test's server.
uint16_t freeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  uint16_t port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

std::string configText(const EdgeOptions& options, const std::string& dir) {
  std::string origins;
  for (const std::string& origin : options.allowed_origins) {
    origins += (origins.empty() ? "" : ", ") + tomlString(origin);
  }
  std::string t;
  t += "[node]\nname = \"cmocka\"\n";
  t += "[websocket]\nlisten = \"127.0.0.1:" + std::to_string(freeLoopbackPort()) +
       "\"\npath = \"/ws\"\n";
  t += "allowed_origins = [" + origins + "]\n";
  t += "max_message_bytes = " + std::to_string(options.max_message_bytes) + "\n";
  t += "outbound_max_messages = " + std::to_string(options.outbound_max_messages) + "\n";
  t += "[admin]\nlisten = \"127.0.0.1:19090\"\n";
  t += "max_body_bytes = " + std::to_string(options.max_body_bytes) + "\n";
  t += "[auth]\naudience = \"wsfleet\"\n";
  t += "[storage]\ndir = " + tomlString(dir) + "\nmap_size_mb = 16\n";
  t += "[tenants.acme]\napi_keys = [" + tomlString(kApiKey) + "]\n";
  t += "default_subs = [\">\"]\ndefault_pubs = [\">\"]\n";
  t += "[[tenants.acme.keys]]\nkid = \"k1\"\nalg = \"HS256\"\n";
  t += "secret = " + tomlString(kSecret) + "\n";
  t += "[tenants.acme.namespaces.live]\nordering = \"none\"\nhistory_size = 0\n";
  t += "[tenants.acme.namespaces.chat]\nordering = \"owner\"\nhistory_size = 10\n";
  return t;
}

}  // namespace

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

EdgeHarness::EdgeHarness() {
  fake::reset();
  std::string pattern = (std::filesystem::temp_directory_path() / "wsfleet-cmocka.XXXXXX").string();
  if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
}

EdgeHarness::~EdgeHarness() {
  server_.reset();
  config_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  fake::reset();
}

Status EdgeHarness::start(const EdgeOptions& options) {
  if (dir_.empty()) return Status(Code::kInternal, "mkdtemp", "no temporary directory");
  setLogLevel(LogLevel::kWarn);  // refusals log at info: keep the test output readable
  Result<EdgeConfig> parsed = parseEdgeConfig(configText(options, dir_), "cmocka.toml");
  if (!parsed) return parsed.status();
  config_ = std::make_unique<EdgeConfig>(std::move(parsed).value());
  Result<std::unique_ptr<EdgeServer>> created = EdgeServer::create(*config_);
  if (!created) return created.status();
  server_ = std::move(created).value();
  return Status::ok();
}

void EdgeHarness::mustStart(const EdgeOptions& options) {
  Status status = start(options);
  if (!status.isOk()) fail_msg("edge did not start: %s", status.toString().c_str());
}

double EdgeHarness::metric(std::string_view series) {
  const std::string text = service().metrics().registry().renderPrometheus();
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
    }
    at = end + 1;
  }
  return 0;
}

std::string EdgeHarness::mintToken(const std::string& user) const {
  TokenKey key;
  key.kid = "k1";
  key.alg = TokenAlg::kHS256;
  key.secret = kSecret;
  TokenToSign token;
  token.claims.sub = user;
  token.claims.tnt = kTenant;
  token.claims.exp = nowWallMs() / 1000 + 3600;
  token.aud = "wsfleet";
  Result<std::string> signed_token = signToken(key, token);
  if (!signed_token) fail_msg("signToken: %s", signed_token.status().toString().c_str());
  return std::move(signed_token).value();
}

int EdgeHarness::ws(WsClient& client, lws_callback_reasons reason, const void* in, size_t len) {
  const fake::FakeLws::Vhost& vhost = fake::state().vhosts["wsfleet-ws"];
  assert_non_null(vhost.protocols);
  return vhost.protocols[0].callback(client.wsi.wsi(), reason, client.session,
                                     const_cast<void*>(in), len);
}

int EdgeHarness::admin(AdminClient& client, lws_callback_reasons reason, const void* in,
                       size_t len) {
  const fake::FakeLws::Vhost& vhost = fake::state().vhosts["wsfleet-admin"];
  assert_non_null(vhost.protocols);
  return vhost.protocols[0].callback(client.wsi.wsi(), reason, client.session,
                                     const_cast<void*>(in), len);
}

void EdgeHarness::setUpgradeHeaders(WsClient& client, const std::string& token) {
  client.wsi.headers[WSI_TOKEN_GET_URI] = "/ws";
  client.wsi.headers[WSI_TOKEN_CONNECTION] = "keep-alive, Upgrade";
  client.wsi.headers[WSI_TOKEN_UPGRADE] = "websocket";
  client.wsi.headers[WSI_TOKEN_KEY] = "dGhlIHNhbXBsZSBub25jZQ==";
  client.wsi.headers[WSI_TOKEN_VERSION] = "13";
  client.wsi.headers[WSI_TOKEN_PROTOCOL] = "wsfleet.v1";
  client.wsi.headers[WSI_TOKEN_HTTP_AUTHORIZATION] = "Bearer " + token;
}

int EdgeHarness::confirmUpgrade(WsClient& client) {
  static const char kWebsocket[] = "websocket";
  return ws(client, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kWebsocket, std::strlen(kWebsocket));
}

void EdgeHarness::connect(WsClient& client, const std::string& user) {
  setUpgradeHeaders(client, mintToken(user));
  assert_int_equal(confirmUpgrade(client), 0);
  assert_int_equal(ws(client, LWS_CALLBACK_ESTABLISHED), 0);
  assert_non_null(client.conn());
}

int EdgeHarness::receive(WsClient& client, std::string_view text) {
  client.wsi.binary = false;
  client.wsi.remaining = 0;
  client.wsi.final_fragment = true;
  return ws(client, LWS_CALLBACK_RECEIVE, text.data(), text.size());
}

void EdgeHarness::drain(WsClient& client) {
  assert_non_null(client.conn());
  // Bounded: a glue that never pops its queue must fail, not hang.
  for (int i = 0; i < 10000 && !client.conn()->out.empty(); ++i) {
    assert_int_equal(writeable(client), 0);
  }
  assert_true(client.conn()->out.empty());
}

void EdgeHarness::tick() {
  fake::FakeLws& lws = fake::state();
  assert_non_null(lws.tick_cb);
  lws.tick_cb(lws.tick_sul);
}

int harnessSetup(void** state) {
  *state = new EdgeHarness();
  return 0;
}

int harnessTeardown(void** state) {
  delete static_cast<EdgeHarness*>(*state);
  *state = nullptr;
  return 0;
}

}  // namespace wsfleet::testing
