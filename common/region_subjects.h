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
// Between a region's edges and its bridges (wsfleet-bridge):
//   wsf.<region>.interest.<node>.<instance>  an edge worker's channels owned elsewhere
//   wsf.<region>.xpub.<owner>.<hist|inbox>.<tenant>.<name>  a store in another region
//   wsf.<region>.xuser.<home>.<tenant>.<user>  a direct message, to the user's home region
//   wsf.<region>.xlive.<owner>.<tenant>.<channel>  an unsequenced publish, for the owner
//   wsf.<region>.xapi.<owner>.<api>          a history read in the owner region
//   wsf.<region>.bridge.hb                   the region's bridges, to each other
// Between bridges of different regions (the only subjects that cross gateways):
//   wsfx.<dest>.hb | .interest | .user.<tenant>.<user> | .live.<tenant>.<channel>
//   wsfx.<dest>.b.<instance>.ch.<tenant>.<channel> | .b.<instance>.user.<tenant>.<user>
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

// "<tenant token>.<channel token>": a channel as the tail of its subjects.
std::string channelTail(std::string_view tenant, std::string_view channel);
// Whether `tail` is such a tail: two non-empty tokens of subjectToken()'s alphabet. What
// arrives from other processes is checked with it before it names a subject (a
// wildcard, an empty token or a third token would name other channels).
bool isChannelTail(std::string_view tail);
std::string interestSubject(std::string_view region, std::string_view node,
                            std::string_view instance);
// A store for another region's stream: `kind` "hist" (a channel's history, `name` the
// channel) or "inbox" (a user's inbox, `name` the user).
std::string forwardedPublishSubject(std::string_view region, std::string_view owner,
                                    std::string_view kind, std::string_view tenant,
                                    std::string_view name);
// An unsequenced channel message published outside the owner region, for the owner.
std::string forwardedLiveSubject(std::string_view region, std::string_view owner,
                                 std::string_view tenant, std::string_view channel);
// A direct message for a user, to the user's home region (which knows where the user is).
std::string forwardedUserSubject(std::string_view region, std::string_view home,
                                 std::string_view tenant, std::string_view user);
// Interest entries name users as "@<tenant token>.<user token>" (tenant tokens never
// start with '@'), channels as channelTail.
std::string userInterestTail(std::string_view tenant, std::string_view user);
// `api` as after "$JS.API." ("STREAM.MSG.GET.WSF_HIST_us").
std::string forwardedApiSubject(std::string_view region, std::string_view owner,
                                std::string_view api);
std::string inboxStreamName(std::string_view region);
// Ownership generation markers (common/owner_records.h): one subject per channel in the
// region's WSF_GEN_<region> stream, which keeps only the latest marker of each.
std::string generationSubject(std::string_view region, std::string_view tenant,
                              std::string_view channel);
std::string generationStreamName(std::string_view region);

}  // namespace wsfleet
