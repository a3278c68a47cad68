#include "common/jetstream_api.h"

#include <cstdint>

#include "common/token.h"

namespace wsfleet {

namespace {

constexpr int64_t kNanosPerMs = 1000000;

// JetStream answers every API call with either the expected object or {"error":{...}}.
// Returns the parsed document, or the error as a Status (with `error` filled in).
Result<simdjson::dom::element> parseReply(JsonParser& parser, std::string_view reply,
                                          const char* what, JsError* error) {
  auto doc = parser.parse(reply);
  if (!doc.isOk()) {
    return Status(Code::kInternal, "jetstream_bad_reply",
                  std::string(what) + ": the reply is not JSON");
  }
  simdjson::dom::object err;
  if ((*doc)["error"].get(err) != simdjson::SUCCESS) return *doc;
  JsError parsed;
  int64_t number = 0;
  if (err["code"].get(number) == simdjson::SUCCESS) parsed.code = static_cast<int>(number);
  if (err["err_code"].get(number) == simdjson::SUCCESS) parsed.err_code = static_cast<int>(number);
  std::string_view description;
  if (err["description"].get(description) == simdjson::SUCCESS) parsed.description = description;
  const int c = parsed.err_code;
  const bool full = c == 10002 || c == 10023 || c == 10028 || c == 10047 ||
                    (c == 10077 && parsed.description.find("maximum") != std::string::npos);
  std::string message =
      std::string(what) + ": " + parsed.description + " (" + std::to_string(parsed.err_code) + ")";
  if (error != nullptr) *error = parsed;
  if (full) return Status(Code::kUnavailable, "jetstream_store_full", std::move(message));
  if (parsed.code == 404) return Status(Code::kNotFound, "jetstream_not_found", std::move(message));
  return Status(Code::kUnavailable, "jetstream_error", std::move(message));
}

void appendNanos(JsonWriter& j, std::string_view key, int64_t ms) {
  j.fieldInt(key, ms * kNanosPerMs);
}

}  // namespace

std::string streamInfoSubject(std::string_view stream) {
  return "$JS.API.STREAM.INFO." + std::string(stream);
}
std::string streamCreateSubject(std::string_view stream) {
  return "$JS.API.STREAM.CREATE." + std::string(stream);
}
std::string streamUpdateSubject(std::string_view stream) {
  return "$JS.API.STREAM.UPDATE." + std::string(stream);
}
std::string msgGetSubject(std::string_view stream) {
  return "$JS.API.STREAM.MSG.GET." + std::string(stream);
}

std::string streamPurgeSubject(std::string_view stream) {
  return "$JS.API.STREAM.PURGE." + std::string(stream);
}

std::string purgeSubjectBelow(std::string_view subject, uint64_t below_seq) {
  std::string out;
  JsonWriter(out).beginObject().field("filter", subject).fieldUint("seq", below_seq).endObject();
  return out;
}

std::string streamConfigJson(const StreamSpec& spec) {
  std::string out;
  JsonWriter j(out);
  j.beginObject()
      .field("name", spec.name)
      .key("subjects")
      .beginArray()
      .string(spec.subjects)
      .endArray()
      .field("retention", "limits")
      .field("storage", "file")
      .field("discard", "old")
      .fieldInt("num_replicas", spec.replicas)
      .fieldInt("max_msgs_per_subject", static_cast<int64_t>(spec.max_msgs_per_subject))
      .fieldInt("max_msgs", -1)
      .fieldInt("max_bytes", spec.max_bytes)
      .fieldInt("max_consumers", -1);
  appendNanos(j, "max_age", spec.max_age_ms);
  appendNanos(j, "duplicate_window", spec.duplicate_window_ms);
  j.fieldBool("allow_direct", true);
  if (!spec.republish_dest.empty()) {
    j.key("republish")
        .beginObject()
        .field("src", spec.subjects)
        .field("dest", spec.republish_dest)
        .endObject();
  }
  j.endObject();
  return out;
}

std::string streamInfoForSubject(std::string_view subject) {
  std::string out;
  JsonWriter(out).beginObject().field("subjects_filter", subject).endObject();
  return out;
}

std::string msgGetBySeq(uint64_t seq) {
  std::string out;
  JsonWriter(out).beginObject().fieldUint("seq", seq).endObject();
  return out;
}

std::string msgGetLastBySubject(std::string_view subject) {
  std::string out;
  JsonWriter(out).beginObject().field("last_by_subj", subject).endObject();
  return out;
}

std::string msgGetNextBySubject(uint64_t from_seq, std::string_view subject) {
  std::string out;
  JsonWriter(out)
      .beginObject()
      .fieldUint("seq", from_seq)
      .field("next_by_subj", subject)
      .endObject();
  return out;
}

Result<StreamInfo> parseStreamInfo(JsonParser& parser, std::string_view reply, JsError* error) {
  WSF_ASSIGN_OR_RETURN(simdjson::dom::element doc, parseReply(parser, reply, "stream info", error));
  StreamInfo info;
  std::string_view created;
  if (doc["created"].get(created) != simdjson::SUCCESS) {
    return Status(Code::kInternal, "jetstream_bad_reply", "stream info: no `created`");
  }
  info.created = created;
  uint64_t n = 0;
  int64_t i = 0;
  if (doc["state"]["first_seq"].get(n) == simdjson::SUCCESS) info.first_seq = n;
  if (doc["state"]["last_seq"].get(n) == simdjson::SUCCESS) info.last_seq = n;
  if (doc["config"]["max_msgs_per_subject"].get(i) == simdjson::SUCCESS) {
    // -1 (or 0): no per-subject limit.
    info.max_msgs_per_subject = i > 0 ? static_cast<uint64_t>(i) : UINT64_MAX;
  }
  if (doc["config"]["max_age"].get(i) == simdjson::SUCCESS) info.max_age_ms = i / kNanosPerMs;
  if (doc["config"]["num_replicas"].get(i) == simdjson::SUCCESS)
    info.replicas = static_cast<int>(i);
  simdjson::dom::object republish;
  info.has_republish = doc["config"]["republish"].get(republish) == simdjson::SUCCESS;
  simdjson::dom::object subjects;
  if (doc["state"]["subjects"].get(subjects) == simdjson::SUCCESS) {
    for (auto field : subjects) {
      uint64_t count = 0;
      if (field.value.get(count) == simdjson::SUCCESS) info.subject_messages += count;
    }
  }
  return info;
}

Result<PubAck> parsePubAck(JsonParser& parser, std::string_view reply, JsError* error) {
  WSF_ASSIGN_OR_RETURN(simdjson::dom::element doc, parseReply(parser, reply, "publish", error));
  PubAck ack;
  if (doc["seq"].get(ack.seq) != simdjson::SUCCESS || ack.seq == 0) {
    return Status(Code::kInternal, "jetstream_bad_reply", "publish: no `seq` in the ack");
  }
  bool duplicate = false;
  if (doc["duplicate"].get(duplicate) == simdjson::SUCCESS) ack.duplicate = duplicate;
  return ack;
}

Result<JsStoredMessage> parseMsgGet(JsonParser& parser, std::string_view reply, JsError* error) {
  WSF_ASSIGN_OR_RETURN(simdjson::dom::element doc, parseReply(parser, reply, "message get", error));
  simdjson::dom::object message;
  if (doc["message"].get(message) != simdjson::SUCCESS) {
    return Status(Code::kInternal, "jetstream_bad_reply", "message get: no `message`");
  }
  JsStoredMessage out;
  std::string_view text;
  if (message["subject"].get(text) != simdjson::SUCCESS ||
      message["seq"].get(out.seq) != simdjson::SUCCESS) {
    return Status(Code::kInternal, "jetstream_bad_reply", "message get: no subject or seq");
  }
  out.subject = text;
  if (message["time"].get(text) == simdjson::SUCCESS) out.time = text;
  if (message["data"].get(text) == simdjson::SUCCESS) {
    auto decoded = base64Decode(text);
    if (!decoded) {
      return Status(Code::kInternal, "jetstream_bad_reply", "message get: data is not base64");
    }
    out.data = std::move(*decoded);
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string url(text);
  for (char& c : url) {
    if (c == '+') {
      c = '-';
    } else if (c == '/') {
      c = '_';
    } else if (c == '-' || c == '_') {
      return std::nullopt;  // not in the standard alphabet
    }
  }
  return base64UrlDecode(url);
}

}  // namespace wsfleet
