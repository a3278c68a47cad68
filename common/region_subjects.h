#pragma once
// The NATS subjects of one region. Edges speak only subjects under `wsf.<region>.`; the
// cross-region ones belong to the bridge.
//
//   wsf.<region>.ch.<tenant>.<channel>    live deliveries to a channel's subscribers
//   wsf.<region>.user.<tenant>.<user>     deliveries to every connection of a user
//   wsf.<region>.hist.<tenant>.<channel>  durable publishes, stored by the history stream,
//                                         which republishes each stored message (with its
//                                         sequence) on the channel's `ch` subject
//   wsf.<region>.inbox.<tenant>.<user>    direct messages kept for an offline user (the
//                                         inbox stream) until the user's next connect
//
// Tenant, channel and user names become single subject tokens through subjectToken(),
// which keeps a safe set of bytes and escapes everything else as %HH: no name a client or
// a token carries can add a token (`.`), a wildcard (`*`, `>`) or whitespace to a subject,
// and two different names never share a token.

#include <string>
#include <string_view>

namespace wsfleet {

std::string subjectToken(std::string_view name);

std::string channelSubject(std::string_view region, std::string_view tenant,
                           std::string_view channel);
std::string userSubject(std::string_view region, std::string_view tenant, std::string_view user);
std::string historySubject(std::string_view region, std::string_view tenant,
                           std::string_view channel);
std::string inboxSubject(std::string_view region, std::string_view tenant, std::string_view user);
// The JetStream streams holding the region's channel history and offline inboxes.
std::string historyStreamName(std::string_view region);
std::string inboxStreamName(std::string_view region);

}  // namespace wsfleet
