#include "common/control_subjects.h"

#include "common/json.h"
#include "common/region_subjects.h"
#include "common/utf8.h"

namespace wsfleet {

namespace {

std::string prefix(std::string_view region) {
  return "wsf." + std::string(region) + ".ctl.";
}

}  // namespace

std::string controlEdgesSubject(std::string_view region) {
  return prefix(region) + "edges";
}

std::string controlNodeSubject(std::string_view region, std::string_view node,
                               std::string_view verb) {
  return prefix(region) + "node." + subjectToken(node) + "." + std::string(verb);
}

std::string controlPresenceSubject(std::string_view region) {
  return prefix(region) + "presence";
}

std::string controlKickSubject(std::string_view region) {
  return prefix(region) + "kick";
}

std::string controlBridgesSubject(std::string_view region) {
  return prefix(region) + "bridges";
}

std::string controlBridgeSubject(std::string_view region, std::string_view verb) {
  return prefix(region) + "bridge." + std::string(verb);
}

Status validateCloseReason(std::string_view reason) {
  if (reason.size() > kControlMaxReasonBytes) {
    return Status(Code::kBadRequest, "bad_reason",
                  "the reason is " + std::to_string(reason.size()) + " bytes, longer than " +
                      std::to_string(kControlMaxReasonBytes) + " (it goes in the close frame)");
  }
  size_t i = 0;
  while (i < reason.size()) {
    uint32_t cp = 0;
    const size_t len = decodeUtf8At(reason, i, &cp);
    if (len == 0) {
      return Status(Code::kBadRequest, "bad_reason",
                    "the reason is not valid UTF-8 at byte " + std::to_string(i));
    }
    if (cp < 0x20 || cp == 0x7F) {
      return Status(Code::kBadRequest, "bad_reason",
                    "the reason holds a control character at byte " + std::to_string(i));
    }
    i += len;
  }
  return Status::ok();
}

std::string controlError(std::string_view reason, std::string_view message) {
  std::string out;
  JsonWriter(out)
      .beginObject()
      .key("error")
      .beginObject()
      .field("reason", reason)
      .field("message", message)
      .endObject()
      .endObject();
  return out;
}

}  // namespace wsfleet
