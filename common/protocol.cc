#include "common/protocol.h"

#include <array>
#include <utility>

#include "common/channel.h"

namespace wsfleet {

namespace {

constexpr size_t kMaxIdempotencyKeyBytes = 128;

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr std::array<std::pair<std::string_view, CommandType>, 7> kCommandNames = {{
    {"subscribe", CommandType::kSubscribe},
    {"unsubscribe", CommandType::kUnsubscribe},
    {"publish", CommandType::kPublish},
    {"send", CommandType::kSend},
    {"presence", CommandType::kPresence},
    {"refresh", CommandType::kRefresh},
    {"ping", CommandType::kPing},
}};

Status badField(std::string message) {
  return Status(Code::kBadRequest, "bad_field", std::move(message));
}

Status missingField(std::string_view name) {
  return badField("missing field \"" + std::string(name) + "\"");
}

Status wrongType(std::string_view name, std::string_view want) {
  return badField("field \"" + std::string(name) + "\" must be " + std::string(want));
}

// Looks a key up; nullopt when absent. Optional fields also treat `null` as absent.
std::optional<element> lookup(object obj, std::string_view name) {
  element value;
  if (obj.at_key(name).get(value) != simdjson::SUCCESS) return std::nullopt;
  return value;
}

Status requireString(object obj, std::string_view name, std::string* out) {
  const std::optional<element> value = lookup(obj, name);
  if (!value) return missingField(name);
  std::string_view s;
  if (value->get_string().get(s) != simdjson::SUCCESS) return wrongType(name, "a string");
  if (s.empty()) return wrongType(name, "a non-empty string");
  out->assign(s);
  return Status::ok();
}

Status requireData(object obj, std::string* out) {
  const std::optional<element> value = lookup(obj, "data");
  if (!value) return missingField("data");
  // Re-serialised once, minified: same value, canonical spelling (numbers and string
  // escapes may be respelled, e.g. "\u00e9" becomes the UTF-8 bytes of é).
  *out = jsonToString(*value);
  return Status::ok();
}

Status optionalIdempotencyKey(object obj, std::string* out) {
  const std::optional<element> value = lookup(obj, "idempotency_key");
  if (!value || value->is_null()) return Status::ok();
  std::string_view s;
  if (value->get_string().get(s) != simdjson::SUCCESS) {
    return wrongType("idempotency_key", "a string");
  }
  if (s.empty() || s.size() > kMaxIdempotencyKeyBytes) {
    return wrongType("idempotency_key", "a string of 1 to 128 bytes");
  }
  // Keys end up inside store keys and logs; control characters have no business there.
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      return wrongType("idempotency_key", "a string without control characters");
    }
  }
  out->assign(s);
  return Status::ok();
}

// Non-negative JSON integer in 0..UINT64_MAX. simdjson types a literal as int64 when it
// fits and as uint64 above INT64_MAX; integers beyond 2^64-1 already failed the parse
// (json_bad_number). Fractions and exponents ("1.5", "1e3", "1.0") are doubles: refused.
bool getUnsigned(element value, uint64_t* out) {
  if (value.type() == element_type::UINT64) {
    return value.get_uint64().get(*out) == simdjson::SUCCESS;
  }
  int64_t v = 0;
  if (value.type() != element_type::INT64 || value.get_int64().get(v) != simdjson::SUCCESS ||
      v < 0) {
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

Status decodeSince(element value, std::optional<StreamPosition>* out) {
  object since;
  if (value.get_object().get(since) != simdjson::SUCCESS) {
    return wrongType("since", "an object {\"epoch\",\"offset\"}");
  }
  StreamPosition pos;
  const std::optional<element> epoch = lookup(since, "epoch");
  if (!epoch) return missingField("since.epoch");
  std::string_view epoch_text;
  if (epoch->get_string().get(epoch_text) != simdjson::SUCCESS) {
    return wrongType("since.epoch", "a string");
  }
  pos.epoch.assign(epoch_text);
  const std::optional<element> offset = lookup(since, "offset");
  if (!offset) return missingField("since.offset");
  if (!getUnsigned(*offset, &pos.offset)) {
    return wrongType("since.offset", "an unsigned integer");
  }
  *out = std::move(pos);
  return Status::ok();
}

Result<object> parseObject(JsonParser& parser, std::string_view text) {
  WSF_ASSIGN_OR_RETURN(element root, parser.parse(text));
  object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return Status(Code::kBadRequest, "bad_frame", "expected a JSON object");
  }
  return obj;
}

// ---- encoding helpers ----

void beginFrame(JsonWriter& w, std::string_view type) {
  w.beginObject().field("type", type);
}

void beginReply(JsonWriter& w, std::optional<uint64_t> id) {
  beginFrame(w, "reply");
  if (id) w.fieldUint("id", *id);
  w.fieldBool("ok", true);
}

// Estimate that avoids regrowing for typical frames.
constexpr size_t kSmallFrame = 96;

}  // namespace

std::string_view commandTypeName(CommandType type) {
  for (const auto& [name, t] : kCommandNames) {
    if (t == type) return name;
  }
  return "unknown";
}

Status decodeClientCommand(JsonParser& parser, std::string_view text, ClientCommand* out) {
  *out = ClientCommand{};
  WSF_ASSIGN_OR_RETURN(object obj, parseObject(parser, text));

  // The id first, so that any later failure can still be answered with it.
  if (const std::optional<element> id = lookup(obj, "id")) {
    uint64_t value = 0;
    if (!getUnsigned(*id, &value)) return wrongType("id", "an unsigned integer");
    out->id = value;
  }

  const std::optional<element> type_value = lookup(obj, "type");
  if (!type_value) return missingField("type");
  std::string_view type_name;
  if (type_value->get_string().get(type_name) != simdjson::SUCCESS) {
    return wrongType("type", "a string");
  }
  bool known = false;
  for (const auto& [name, t] : kCommandNames) {
    if (name == type_name) {
      out->type = t;
      known = true;
      break;
    }
  }
  // The type is not echoed: it is peer text and the reply names the id anyway.
  if (!known) return Status(Code::kBadRequest, "unknown_command", "unknown command type");

  switch (out->type) {
    case CommandType::kSubscribe: {
      WSF_RETURN_IF_ERROR(requireString(obj, "channel", &out->channel));
      const std::optional<element> since = lookup(obj, "since");
      if (since && !since->is_null()) WSF_RETURN_IF_ERROR(decodeSince(*since, &out->since));
      break;
    }
    case CommandType::kUnsubscribe:
    case CommandType::kPresence:
      WSF_RETURN_IF_ERROR(requireString(obj, "channel", &out->channel));
      break;
    case CommandType::kPublish:
      WSF_RETURN_IF_ERROR(requireString(obj, "channel", &out->channel));
      WSF_RETURN_IF_ERROR(requireData(obj, &out->data_json));
      WSF_RETURN_IF_ERROR(optionalIdempotencyKey(obj, &out->idempotency_key));
      break;
    case CommandType::kSend:
      WSF_RETURN_IF_ERROR(requireString(obj, "user", &out->user));
      WSF_RETURN_IF_ERROR(validateUserId(out->user));
      WSF_RETURN_IF_ERROR(requireData(obj, &out->data_json));
      WSF_RETURN_IF_ERROR(optionalIdempotencyKey(obj, &out->idempotency_key));
      break;
    case CommandType::kRefresh:
      WSF_RETURN_IF_ERROR(requireString(obj, "token", &out->token));
      break;
    case CommandType::kPing:
      break;
  }
  return Status::ok();
}

Result<ApiPublish> decodeApiPublish(JsonParser& parser, std::string_view body) {
  WSF_ASSIGN_OR_RETURN(object obj, parseObject(parser, body));
  ApiPublish out;
  WSF_RETURN_IF_ERROR(requireString(obj, "tenant", &out.tenant));
  WSF_RETURN_IF_ERROR(requireString(obj, "channel", &out.channel));
  WSF_RETURN_IF_ERROR(requireData(obj, &out.data_json));
  WSF_RETURN_IF_ERROR(optionalIdempotencyKey(obj, &out.idempotency_key));
  return out;
}

Result<ApiSend> decodeApiSend(JsonParser& parser, std::string_view body) {
  WSF_ASSIGN_OR_RETURN(object obj, parseObject(parser, body));
  ApiSend out;
  WSF_RETURN_IF_ERROR(requireString(obj, "tenant", &out.tenant));
  WSF_RETURN_IF_ERROR(requireString(obj, "user", &out.user));
  WSF_RETURN_IF_ERROR(validateUserId(out.user));
  WSF_RETURN_IF_ERROR(requireData(obj, &out.data_json));
  WSF_RETURN_IF_ERROR(optionalIdempotencyKey(obj, &out.idempotency_key));
  return out;
}

// ---- server -> client ----

std::string encodeWelcome(const WelcomeInfo& w) {
  std::string out;
  out.reserve(256 + w.regions.size() * 64);
  JsonWriter j(out);
  beginFrame(j, "welcome");
  j.field("session", w.session)
      .field("node", w.node)
      .field("region", w.region)
      .fieldUint("ping_interval_ms", w.ping_interval_ms)
      .fieldUint("resume_window_ms", w.resume_window_ms)
      .fieldUint("max_message_bytes", w.max_message_bytes)
      .key("regions")
      .beginArray();
  for (const RegionInfo& r : w.regions) {
    j.beginObject().field("name", r.name).field("url", r.url).endObject();
  }
  j.endArray().endObject();
  return out;
}

std::string encodeOkReply(std::optional<uint64_t> id) {
  std::string out;
  out.reserve(kSmallFrame);
  JsonWriter j(out);
  beginReply(j, id);
  j.endObject();
  return out;
}

std::string encodeSubscribeReply(std::optional<uint64_t> id, const StreamPosition& pos,
                                 bool recovered) {
  std::string out;
  out.reserve(kSmallFrame + pos.epoch.size());
  JsonWriter j(out);
  beginReply(j, id);
  j.field("epoch", pos.epoch)
      .fieldUint("offset", pos.offset)
      .fieldBool("recovered", recovered)
      .endObject();
  return out;
}

std::string encodePublishReply(std::optional<uint64_t> id, uint64_t offset,
                               std::string_view epoch) {
  std::string out;
  out.reserve(kSmallFrame);
  JsonWriter j(out);
  beginReply(j, id);
  j.fieldUint("offset", offset);
  if (!epoch.empty()) j.field("epoch", epoch);
  j.endObject();
  return out;
}

std::string encodeSendReply(std::optional<uint64_t> id, std::string_view delivered) {
  std::string out;
  out.reserve(kSmallFrame);
  JsonWriter j(out);
  beginReply(j, id);
  j.field("delivered", delivered).endObject();
  return out;
}

std::string encodePresenceReply(std::optional<uint64_t> id,
                                const std::vector<PresenceMember>& members) {
  std::string out;
  out.reserve(kSmallFrame + members.size() * 48);
  JsonWriter j(out);
  beginReply(j, id);
  j.key("members").beginArray();
  for (const PresenceMember& m : members) {
    j.beginObject().field("user", m.user).fieldUint("connections", m.connections).endObject();
  }
  j.endArray().endObject();
  return out;
}

std::string encodeRefreshReply(std::optional<uint64_t> id, int64_t expires_at_ms) {
  std::string out;
  out.reserve(kSmallFrame);
  JsonWriter j(out);
  beginReply(j, id);
  j.fieldInt("expires_at", expires_at_ms).endObject();
  return out;
}

std::string encodeErrorReply(std::optional<uint64_t> id, Code code, std::string_view message) {
  // Only the protocol's codes go on the wire; the rest (ok, config) would mean a bug.
  std::string_view code_name = codeName(code);
  if (code == Code::kOk || code == Code::kConfig) code_name = codeName(Code::kInternal);
  std::string out;
  out.reserve(kSmallFrame + message.size());
  JsonWriter j(out);
  beginFrame(j, "reply");
  if (id) j.fieldUint("id", *id);
  j.fieldBool("ok", false)
      .key("error")
      .beginObject()
      .field("code", code_name)
      .field("message", message)
      .endObject()
      .endObject();
  return out;
}

std::string encodePong(std::optional<uint64_t> id) {
  std::string out;
  out.reserve(48);
  JsonWriter j(out);
  beginFrame(j, "pong");
  if (id) j.fieldUint("id", *id);
  j.endObject();
  return out;
}

std::string encodeMessage(std::string_view channel, std::string_view epoch, uint64_t offset,
                          std::string_view from, std::string_view data_json, int64_t ts_ms) {
  std::string out;
  out.reserve(kSmallFrame + channel.size() + epoch.size() + from.size() + data_json.size());
  JsonWriter j(out);
  beginFrame(j, "message");
  j.field("channel", channel)
      .field("epoch", epoch)
      .fieldUint("offset", offset)
      .field("from", from)
      .fieldRaw("data", data_json)
      .fieldInt("ts", ts_ms)
      .endObject();
  return out;
}

std::string encodeDirect(std::string_view from, std::string_view data_json, int64_t ts_ms) {
  std::string out;
  out.reserve(kSmallFrame + from.size() + data_json.size());
  JsonWriter j(out);
  beginFrame(j, "direct");
  j.field("from", from).fieldRaw("data", data_json).fieldInt("ts", ts_ms).endObject();
  return out;
}

std::string encodeJoin(std::string_view channel, std::string_view user) {
  std::string out;
  out.reserve(kSmallFrame + channel.size() + user.size());
  JsonWriter j(out);
  beginFrame(j, "join");
  j.field("channel", channel).field("user", user).endObject();
  return out;
}

std::string encodeLeave(std::string_view channel, std::string_view user) {
  std::string out;
  out.reserve(kSmallFrame + channel.size() + user.size());
  JsonWriter j(out);
  beginFrame(j, "leave");
  j.field("channel", channel).field("user", user).endObject();
  return out;
}

std::string encodeReconnect(uint64_t after_ms, std::string_view url, std::string_view reason) {
  std::string out;
  out.reserve(kSmallFrame + url.size() + reason.size());
  JsonWriter j(out);
  beginFrame(j, "reconnect");
  j.fieldUint("after_ms", after_ms);
  // No url means "reconnect to the same address"; an empty string would be a bad URL.
  if (!url.empty()) j.field("url", url);
  j.field("reason", reason).endObject();
  return out;
}

std::string encodeRefreshRequired(int64_t expires_at_ms) {
  std::string out;
  out.reserve(48);
  JsonWriter j(out);
  beginFrame(j, "refresh_required");
  j.fieldInt("expires_at", expires_at_ms).endObject();
  return out;
}

}  // namespace wsfleet
