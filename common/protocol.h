#pragma once
// Client protocol v1 codec (docs/PROTOCOL.md): decoding client commands and backend API
// bodies, encoding server frames. Pure: no I/O. Every encoder returns one complete JSON
// text frame; callers frame it once and share the bytes among all recipients.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace wsfleet {

enum class CommandType { kSubscribe, kUnsubscribe, kPublish, kSend, kPresence, kRefresh, kPing };
std::string_view commandTypeName(CommandType type);

struct StreamPosition {
  std::string epoch;
  uint64_t offset = 0;
};

struct ClientCommand {
  CommandType type = CommandType::kPing;
  std::optional<uint64_t> id;       // 0..UINT64_MAX; negative / fractional / too big: refused
  std::string channel;              // subscribe, unsubscribe, publish, presence
  std::optional<StreamPosition> since;  // subscribe
  std::string data_json;            // publish, send: minified JSON of `data` (required there)
  std::string idempotency_key;      // publish, send: optional, <= 128 bytes
  std::string user;                 // send
  std::string token;                // refresh
};

// Decodes one client text frame. On failure returns kBadRequest / kTooLarge, and
// out->id is still set when the frame carried a valid id, so the error reply can name it.
// Unknown fields are ignored (forward compatibility); client-sent identity fields
// ("from", "tenant", "tnt", "sub") are ignored, never trusted. Field presence and types
// are checked per command ("channel" must be a string, etc.); channel *names* are
// validated by the caller with validateChannelName.
Status decodeClientCommand(JsonParser& parser, std::string_view text, ClientCommand* out);

// Backend HTTP API bodies.
struct ApiPublish {
  std::string tenant, channel, data_json, idempotency_key;
};
struct ApiSend {
  std::string tenant, user, data_json, idempotency_key;
};
Result<ApiPublish> decodeApiPublish(JsonParser& parser, std::string_view body);
Result<ApiSend> decodeApiSend(JsonParser& parser, std::string_view body);

// ---- server -> client frames ----

struct RegionInfo {
  std::string name, url;
};
struct WelcomeInfo {
  std::string session, node, region;
  uint64_t ping_interval_ms = 0, resume_window_ms = 0, max_message_bytes = 0;
  std::vector<RegionInfo> regions;
};
std::string encodeWelcome(const WelcomeInfo& w);

// {"type":"reply","id":…,"ok":true,…}; id omitted when the command had none.
std::string encodeOkReply(std::optional<uint64_t> id);
std::string encodeSubscribeReply(std::optional<uint64_t> id, const StreamPosition& pos,
                                 bool recovered);
// `epoch` (omitted when empty: unsequenced channels) names the history the offset is of;
// after an ownership move the offset alone would be ambiguous.
std::string encodePublishReply(std::optional<uint64_t> id, uint64_t offset,
                               std::string_view epoch = {});
std::string encodeSendReply(std::optional<uint64_t> id, std::string_view delivered);
struct PresenceMember {
  std::string user;
  uint64_t connections = 0;
};
std::string encodePresenceReply(std::optional<uint64_t> id,
                                const std::vector<PresenceMember>& members);
std::string encodeRefreshReply(std::optional<uint64_t> id, int64_t expires_at_ms);
// {"type":"reply","id":…,"ok":false,"error":{"code":codeName(code),"message":…}}
std::string encodeErrorReply(std::optional<uint64_t> id, Code code, std::string_view message);
std::string encodePong(std::optional<uint64_t> id);

std::string encodeMessage(std::string_view channel, std::string_view epoch, uint64_t offset,
                          std::string_view from, std::string_view data_json, int64_t ts_ms);
std::string encodeDirect(std::string_view from, std::string_view data_json, int64_t ts_ms);
std::string encodeJoin(std::string_view channel, std::string_view user);
std::string encodeLeave(std::string_view channel, std::string_view user);
std::string encodeReconnect(uint64_t after_ms, std::string_view url, std::string_view reason);
std::string encodeRefreshRequired(int64_t expires_at_ms);

}  // namespace wsfleet
