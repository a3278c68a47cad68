#pragma once
// The fleet's control plane (docs/ARCHITECTURE.md, "Control plane"): request/reply
// subjects every edge worker and every bridge of a region answers, for wsfleetctl. They
// live on the fleet's NATS, so its accounts and credentials are their authentication; the
// supercluster routes them across gateways, so one connection anywhere reaches every
// region.
//
//   wsf.<region>.ctl.edges                  every edge worker: its state and rates
//   wsf.<region>.ctl.node.<node>.drain      every worker of edge node <node>: drain, held
//   wsf.<region>.ctl.node.<node>.undrain    ... and take clients again
//   wsf.<region>.ctl.presence               every edge worker: a user's connections, or a
//                                           channel's members, held here
//   wsf.<region>.ctl.kick                   every edge worker: close a user's connections
//   wsf.<region>.ctl.bridges                every bridge: its links and rates
//   wsf.<region>.ctl.bridge.pause|resume    every bridge: pause or resume a region's link
//
// Requests and replies are JSON objects; a refused request is answered
// {"error":{"reason","message"}}. The node is a subject token (subjectToken()).

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wsfleet {

// The most entries (connections, members) one reply lists; `truncated` says there were more.
inline constexpr size_t kControlMaxEntries = 1000;
// A close reason must fit a close frame's 125 bytes with its 2-byte code.
inline constexpr size_t kControlMaxReasonBytes = 123;

std::string controlEdgesSubject(std::string_view region);
std::string controlNodeSubject(std::string_view region, std::string_view node,
                               std::string_view verb);
std::string controlPresenceSubject(std::string_view region);
std::string controlKickSubject(std::string_view region);
std::string controlBridgesSubject(std::string_view region);
std::string controlBridgeSubject(std::string_view region, std::string_view verb);

// A close reason an operator gives (`conn kick --reason`): valid UTF-8 without control
// characters, at most kControlMaxReasonBytes. Code::kBadRequest "bad_reason".
Status validateCloseReason(std::string_view reason);

// {"error":{"reason":…,"message":…}}
std::string controlError(std::string_view reason, std::string_view message);

}  // namespace wsfleet
