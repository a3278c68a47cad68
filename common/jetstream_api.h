#pragma once
// The slice of the JetStream JSON API wsfleet uses, as pure functions: request bodies and
// parsed answers. No I/O: the caller sends them with NatsLink::request() to the subjects
// below. Every error answer becomes a Status; a store that is full is kUnavailable with
// reason "jetstream_store_full" so that callers count and report it as such.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace wsfleet {

// JetStream's own error codes (err_code) that callers branch on.
inline constexpr int kJsStreamNotFound = 10059;
inline constexpr int kJsNoMessageFound = 10037;
// A store refused by Nats-Expected-Last-Subject-Sequence (a compare-and-set that lost).
inline constexpr int kJsWrongLastSequence = 10071;

struct StreamSpec {
  std::string name;            // WSF_HIST_<region>
  std::string subjects;        // wsf.<region>.hist.>
  std::string republish_dest;  // wsf.<region>.ch.> ("" = no republish)
  uint64_t max_msgs_per_subject = 100;
  int64_t max_age_ms = 0;  // 0 = no age limit
  int64_t max_bytes = -1;  // -1 = no limit
  int64_t duplicate_window_ms = 120000;
  int replicas = 1;
};

std::string streamInfoSubject(std::string_view stream);
std::string streamCreateSubject(std::string_view stream);
std::string streamUpdateSubject(std::string_view stream);
std::string msgGetSubject(std::string_view stream);
std::string streamPurgeSubject(std::string_view stream);

std::string streamConfigJson(const StreamSpec& spec);
// The STREAM.INFO request body asking for one subject's message count.
std::string streamInfoForSubject(std::string_view subject);
// {"seq":N} / {"last_by_subj":S} / {"seq":N,"next_by_subj":S}
std::string msgGetBySeq(uint64_t seq);
std::string msgGetLastBySubject(std::string_view subject);
std::string msgGetNextBySubject(uint64_t from_seq, std::string_view subject);
// Removes the messages of `subject` below `below_seq`.
std::string purgeSubjectBelow(std::string_view subject, uint64_t below_seq);

// An `{"error":{...}}` answer of the JetStream API.
struct JsError {
  int code = 0;      // HTTP-like status
  int err_code = 0;  // JetStream's own code
  std::string description;
};

struct StreamInfo {
  std::string created;  // RFC 3339 creation time: changes when the stream is recreated
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t max_msgs_per_subject = 0;
  int64_t max_age_ms = 0;
  int replicas = 0;
  bool has_republish = false;
  // With streamInfoForSubject(): the messages stored on that subject.
  uint64_t subject_messages = 0;
};

struct PubAck {
  uint64_t seq = 0;
  bool duplicate = false;
};

struct JsStoredMessage {
  std::string subject;
  uint64_t seq = 0;
  std::string data;  // decoded
  std::string time;  // RFC 3339
};

// Each returns the parsed answer, or the JsError in `error` (and a Status saying what
// failed). A reply that is not JSON of the expected shape is kInternal.
Result<StreamInfo> parseStreamInfo(JsonParser& parser, std::string_view reply,
                                   JsError* error = nullptr);
Result<PubAck> parsePubAck(JsonParser& parser, std::string_view reply, JsError* error = nullptr);
Result<JsStoredMessage> parseMsgGet(JsonParser& parser, std::string_view reply,
                                    JsError* error = nullptr);

// Standard base64 (with padding), as JetStream encodes stored payloads.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace wsfleet
