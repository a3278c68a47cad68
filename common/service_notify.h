#pragma once
// Tells the service manager how the daemon is doing: systemd's notification protocol
// (sd_notify(3)), without linking libsystemd. Under a unit with Type=notify the manager
// passes a datagram socket in $NOTIFY_SOCKET; each state change is one datagram of
// newline-separated VAR=value lines. Without $NOTIFY_SOCKET (run by hand, in tests, or
// under another supervisor) every call does nothing and succeeds.

#include <string_view>

#include "common/status.h"

namespace wsfleet {

// Sends `state` ("READY=1", "STATUS=...", several lines joined by '\n') to the socket
// named by $NOTIFY_SOCKET: a path, or an abstract socket when it starts with '@'.
Status notifyServiceManager(std::string_view state);
// The same to an explicit socket address (the tests' socket).
Status notifyServiceManagerAt(std::string_view socket, std::string_view state);

// The states the daemons report; failures are only logged (the daemon keeps serving).
void notifyReady(std::string_view status);
// For Type=notify-reload (systemd 253+; READY=1 follows once the new configuration is
// in force). Not sent under Type=notify with ExecReload=, whose job is the reload.
void notifyReloading();
void notifyStopping(std::string_view status);
void notifyStatus(std::string_view status);

}  // namespace wsfleet
