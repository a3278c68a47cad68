// The service manager notifications against a real unix datagram socket standing in for
// systemd's NOTIFY_SOCKET: a path socket and an abstract one.
#include "common/service_notify.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "tests/unit/notify_socket.h"
#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

TEST(ServiceNotifyTest, SendsEachStateAsOneDatagramToAPathSocket) {
  TempDir dir;
  const std::string path = dir.path() + "/notify";
  ManagerSocket manager(path);
  ASSERT_TRUE(manager.bound());
  NotifySocketEnv env(path.c_str());

  notifyReady("serving 2 workers");
  EXPECT_EQ(manager.receive(), "READY=1\nSTATUS=serving 2 workers");
  notifyStatus("worker 1 restarted");
  EXPECT_EQ(manager.receive(), "STATUS=worker 1 restarted");
  notifyStopping("draining");
  EXPECT_EQ(manager.receive(), "STOPPING=1\nSTATUS=draining");
}

TEST(ServiceNotifyTest, ReloadingCarriesTheMonotonicTimeOfTheRequest) {
  TempDir dir;
  const std::string path = dir.path() + "/notify";
  ManagerSocket manager(path);
  ASSERT_TRUE(manager.bound());
  NotifySocketEnv env(path.c_str());

  timespec before{};
  clock_gettime(CLOCK_MONOTONIC, &before);
  notifyReloading();
  const std::string message = manager.receive();
  ASSERT_EQ(message.rfind("RELOADING=1\n", 0), 0u) << message;
  const size_t at = message.find("MONOTONIC_USEC=");
  ASSERT_NE(at, std::string::npos) << message;
  const long long usec = std::stoll(message.substr(at + std::strlen("MONOTONIC_USEC=")));
  const long long before_usec =
      static_cast<long long>(before.tv_sec) * 1000000 + before.tv_nsec / 1000;
  EXPECT_GE(usec, before_usec);
  EXPECT_LT(usec, before_usec + 5000000);
}

TEST(ServiceNotifyTest, ReachesAnAbstractSocket) {
  const std::string name = "@wsfleet-notify-test-" + std::to_string(getpid());
  ManagerSocket manager(name);
  ASSERT_TRUE(manager.bound());
  NotifySocketEnv env(name.c_str());
  EXPECT_TRUE(notifyServiceManager("READY=1").isOk());
  EXPECT_EQ(manager.receive(), "READY=1");
}

TEST(ServiceNotifyTest, WithoutNotifySocketNothingIsSentAndItSucceeds) {
  TempDir dir;
  const std::string path = dir.path() + "/notify";
  ManagerSocket manager(path);
  ASSERT_TRUE(manager.bound());
  NotifySocketEnv env(nullptr);
  EXPECT_TRUE(notifyServiceManager("READY=1").isOk());
  EXPECT_TRUE(manager.idle());
}

TEST(ServiceNotifyTest, ReportsASocketNobodyListensOnAndABadAddress) {
  TempDir dir;
  const Status gone = notifyServiceManagerAt(dir.path() + "/nobody", "READY=1");
  EXPECT_FALSE(gone.isOk());
  EXPECT_STREQ(gone.reason(), "notify_send_failed");
  const Status relative = notifyServiceManagerAt("relative/path", "READY=1");
  EXPECT_STREQ(relative.reason(), "notify_socket_invalid");
  const Status too_long = notifyServiceManagerAt("/" + std::string(200, 'x'), "READY=1");
  EXPECT_STREQ(too_long.reason(), "notify_socket_invalid");
}

}  // namespace
}  // namespace wsfleet
