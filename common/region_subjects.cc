#include "common/region_subjects.h"

namespace wsfleet {

namespace {

bool keptAsIs(char c) {
  // The channel alphabet of the protocol plus ':' and '_': everything a valid channel
  // name may contain passes unchanged, which keeps subjects readable in monitoring.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '@' || c == '=' || c == '+' || c == ',' || c == ':';
}

std::string join(std::string_view region, std::string_view kind, std::string_view tenant,
                 std::string_view name) {
  std::string out;
  out.reserve(8 + region.size() + kind.size() + tenant.size() + name.size());
  out.append("wsf.").append(region).push_back('.');
  out.append(kind).push_back('.');
  out.append(subjectToken(tenant)).push_back('.');
  out.append(subjectToken(name));
  return out;
}

}  // namespace

std::string subjectToken(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  if (name.empty()) return "%";  // a token may not be empty; no escape is a lone '%'
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (keptAsIs(c)) {
      out.push_back(c);
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
  return out;
}

std::string channelSubject(std::string_view region, std::string_view tenant,
                           std::string_view channel) {
  return join(region, "ch", tenant, channel);
}

std::string userSubject(std::string_view region, std::string_view tenant, std::string_view user) {
  return join(region, "user", tenant, user);
}

std::string historySubject(std::string_view region, std::string_view tenant,
                           std::string_view channel) {
  return join(region, "hist", tenant, channel);
}

std::string inboxSubject(std::string_view region, std::string_view tenant, std::string_view user) {
  return join(region, "inbox", tenant, user);
}

std::string inboxStreamName(std::string_view region) {
  return "WSF_INBOX_" + std::string(region);
}

std::string generationSubject(std::string_view region, std::string_view tenant,
                              std::string_view channel) {
  return join(region, "gen", tenant, channel);
}

std::string generationStreamName(std::string_view region) {
  return "WSF_GEN_" + std::string(region);
}

std::string historyStreamName(std::string_view region) {
  return "WSF_HIST_" + std::string(region);
}

std::string channelTail(std::string_view tenant, std::string_view channel) {
  return subjectToken(tenant) + "." + subjectToken(channel);
}

bool isChannelTail(std::string_view tail) {
  auto is_token = [](std::string_view token) {
    if (token.empty()) return false;
    for (char c : token) {
      if (!keptAsIs(c) && c != '%') return false;  // '%' and hex digits: escapes
    }
    return true;
  };
  const size_t dot = tail.find('.');
  return dot != std::string_view::npos && is_token(tail.substr(0, dot)) &&
         is_token(tail.substr(dot + 1));
}

std::string interestSubject(std::string_view region, std::string_view node,
                            std::string_view instance) {
  return join(region, "interest", node, instance);
}

std::string forwardedPublishSubject(std::string_view region, std::string_view owner,
                                    std::string_view kind, std::string_view tenant,
                                    std::string_view name) {
  return "wsf." + std::string(region) + ".xpub." + std::string(owner) + "." + std::string(kind) +
         "." + channelTail(tenant, name);
}

std::string forwardedLiveSubject(std::string_view region, std::string_view owner,
                                 std::string_view tenant, std::string_view channel) {
  return "wsf." + std::string(region) + ".xlive." + std::string(owner) + "." +
         channelTail(tenant, channel);
}

std::string forwardedUserSubject(std::string_view region, std::string_view home,
                                 std::string_view tenant, std::string_view user) {
  return "wsf." + std::string(region) + ".xuser." + std::string(home) + "." +
         channelTail(tenant, user);
}

std::string userInterestTail(std::string_view tenant, std::string_view user) {
  return "@" + channelTail(tenant, user);
}

std::string forwardedApiSubject(std::string_view region, std::string_view owner,
                                std::string_view api) {
  return "wsf." + std::string(region) + ".xapi." + std::string(owner) + "." + std::string(api);
}

}  // namespace wsfleet
