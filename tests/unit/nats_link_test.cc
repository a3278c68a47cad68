// NatsLink against a real nats-server on a free loopback port: messages and headers both
// ways, requests with replies (one or several) and with no responders, and a server restart the link
// survives with its subscriptions.

#include "common/nats_link.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/test_port.h"

namespace wsfleet {
namespace {

using Clock = std::chrono::steady_clock;

bool canConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// One nats-server process (no JetStream needed here), stopped by the destructor.
class NatsServer {
 public:
  explicit NatsServer(int port) : port_(port) { start(); }
  ~NatsServer() { stop(); }
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string p = std::to_string(port_);
      // Its banner would bury the test output.
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
      ::execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!canConnect(port_)) {
      int status = 0;
      ASSERT_EQ(::waitpid(pid_, &status, WNOHANG), 0) << "nats-server exited (is it installed?)";
      ASSERT_LT(Clock::now(), deadline) << "nats-server not listening";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

class LinkUnderTest {
 public:
  LinkUnderTest(const std::string& url, MetricsRegistry& registry, const char* name) {
    NatsLinkOptions options;
    options.servers = {url};
    options.name = name;
    options.reconnect_wait_ms = 50;
    options.reconnect_wait_max_ms = 200;
    options.metric_labels = {{"link", name}};
    auto started = NatsLink::start(options, registry);
    EXPECT_TRUE(started.isOk()) << started.status().toString();
    link = std::move(*started);
  }

  // The next inbound item matching `want`, waiting on the link's eventfd.
  template <class Pred>
  std::optional<NatsInbound> next(Pred want,
                                  std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      while (!pending.empty()) {
        NatsInbound item = std::move(pending.front());
        pending.erase(pending.begin());
        if (want(item)) return item;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd pfd{link->wakeFd(), POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(left.count()));
      link->takeInbound(pending);
    }
  }
  bool waitState(NatsLinkState state) {
    if (link->state() == state) return true;
    return next([&](const NatsInbound& i) {
             return i.kind == NatsInbound::Kind::kState && i.state == state;
           })
        .has_value();
  }

  std::unique_ptr<NatsLink> link;
  std::vector<NatsInbound> pending;
};

auto messageOn(const std::string& subject) {
  return [subject](const NatsInbound& i) {
    return i.kind == NatsInbound::Kind::kMessage && i.subject == subject;
  };
}

TEST(NatsLink, CarriesMessagesWithHeadersBetweenTwoLinks) {
  const TestPort port;
  NatsServer server(port.port());
  MetricsRegistry registry;
  LinkUnderTest a(server.url(), registry, "a");
  LinkUnderTest b(server.url(), registry, "b");
  ASSERT_TRUE(a.waitState(NatsLinkState::kConnected));
  ASSERT_TRUE(b.waitState(NatsLinkState::kConnected));

  ASSERT_TRUE(b.link->subscribe(7, "wsf.eu.ch.demo.chat:x"));
  // A subscription is live once the server answered a request sent after it.
  ASSERT_TRUE(b.link->request(1, "nobody.listens", ""));
  ASSERT_TRUE(b.next([](const NatsInbound& i) { return i.kind == NatsInbound::Kind::kReply; }));

  ASSERT_TRUE(a.link->publish("wsf.eu.ch.demo.chat:x", std::string("bin\0ary", 7),
                              {{"Nats-Msg-Id", "k-1"}}));
  auto got = b.next(messageOn("wsf.eu.ch.demo.chat:x"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sub_id, 7u);
  EXPECT_EQ(got->data, std::string("bin\0ary", 7));
  ASSERT_NE(got->header("nats-msg-id"), nullptr);
  EXPECT_EQ(*got->header("nats-msg-id"), "k-1");

  // After unsubscribe nothing more arrives (checked with a marker on a second subject).
  ASSERT_TRUE(b.link->unsubscribe(7));
  ASSERT_TRUE(b.link->subscribe(8, "marker"));
  ASSERT_TRUE(b.link->request(2, "nobody.listens", ""));
  ASSERT_TRUE(b.next([](const NatsInbound& i) { return i.request_id == 2; }));
  ASSERT_TRUE(a.link->publish("wsf.eu.ch.demo.chat:x", "late"));
  ASSERT_TRUE(a.link->publish("marker", "m"));
  auto marker = b.next([](const NatsInbound& i) { return i.kind == NatsInbound::Kind::kMessage; });
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->subject, "marker") << "a message arrived after unsubscribe";
}

TEST(NatsLink, RequestsGetRepliesOrNoResponders) {
  const TestPort port;
  NatsServer server(port.port());
  MetricsRegistry registry;
  LinkUnderTest client(server.url(), registry, "client");
  LinkUnderTest service(server.url(), registry, "service");
  ASSERT_TRUE(client.waitState(NatsLinkState::kConnected));
  ASSERT_TRUE(service.waitState(NatsLinkState::kConnected));

  ASSERT_TRUE(client.link->request(41, "no.one.here", "ping"));
  auto none = client.next([](const NatsInbound& i) { return i.request_id == 41; });
  ASSERT_TRUE(none);
  EXPECT_EQ(none->kind, NatsInbound::Kind::kReply);
  EXPECT_EQ(none->status, "503");

  ASSERT_TRUE(service.link->subscribe(1, "svc.echo"));
  ASSERT_TRUE(service.link->request(9, "nobody.listens", ""));
  ASSERT_TRUE(service.next([](const NatsInbound& i) { return i.request_id == 9; }));
  ASSERT_TRUE(client.link->request(42, "svc.echo", "hello"));
  auto asked = service.next(messageOn("svc.echo"));
  ASSERT_TRUE(asked);
  ASSERT_FALSE(asked->reply.empty());
  ASSERT_TRUE(service.link->publish(asked->reply, "hello back"));
  auto answer = client.next([](const NatsInbound& i) { return i.request_id == 42; });
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->data, "hello back");
  EXPECT_TRUE(answer->status.empty());
}

// Scatter-gather (wsfleetctl asks every edge of a region at once): a request answered by
// several services delivers every answer with the request's id; none is swallowed after
// the first.
TEST(NatsLink, RequestsCollectEveryReplyOfSeveralResponders) {
  const TestPort port;
  NatsServer server(port.port());
  MetricsRegistry registry;
  LinkUnderTest client(server.url(), registry, "client");
  std::vector<std::unique_ptr<LinkUnderTest>> services;
  for (const char* name : {"s1", "s2", "s3"}) {
    services.push_back(std::make_unique<LinkUnderTest>(server.url(), registry, name));
  }
  ASSERT_TRUE(client.waitState(NatsLinkState::kConnected));
  for (auto& s : services) {
    ASSERT_TRUE(s->waitState(NatsLinkState::kConnected));
    ASSERT_TRUE(s->link->subscribe(1, "ctl.all"));
    ASSERT_TRUE(s->link->request(5, "nobody.listens", ""));
    ASSERT_TRUE(s->next([](const NatsInbound& i) { return i.request_id == 5; }));
  }
  ASSERT_TRUE(client.link->request(77, "ctl.all", "who"));
  for (size_t i = 0; i < services.size(); ++i) {
    auto asked = services[i]->next(messageOn("ctl.all"));
    ASSERT_TRUE(asked);
    ASSERT_EQ(asked->data, "who");
    ASSERT_TRUE(services[i]->link->publish(asked->reply, "me " + std::to_string(i)));
  }
  std::vector<std::string> answers;
  while (answers.size() < services.size()) {
    auto got = client.next([](const NatsInbound& i) { return i.kind == NatsInbound::Kind::kReply; });
    ASSERT_TRUE(got) << "only " << answers.size() << " replies";
    EXPECT_EQ(got->request_id, 77u);
    EXPECT_TRUE(got->status.empty());
    answers.push_back(got->data);
  }
  std::sort(answers.begin(), answers.end());
  EXPECT_EQ(answers, (std::vector<std::string>{"me 0", "me 1", "me 2"}));
}

TEST(NatsLink, SurvivesAServerRestartWithItsSubscriptions) {
  const TestPort reserved;
  const int port = reserved.port();
  auto server = std::make_unique<NatsServer>(port);
  MetricsRegistry registry;
  LinkUnderTest a(server->url(), registry, "a");
  LinkUnderTest b(server->url(), registry, "b");
  ASSERT_TRUE(a.waitState(NatsLinkState::kConnected));
  ASSERT_TRUE(b.waitState(NatsLinkState::kConnected));
  ASSERT_TRUE(b.link->subscribe(3, "after.restart"));
  ASSERT_TRUE(b.link->request(1, "nobody.listens", ""));
  ASSERT_TRUE(b.next([](const NatsInbound& i) { return i.request_id == 1; }));

  server->stop();
  ASSERT_TRUE(b.waitState(NatsLinkState::kReconnecting));
  EXPECT_NE(registry.renderPrometheus().find("wsfleet_nats_connected{link=\"b\"} 0"),
            std::string::npos);
  server->start();
  ASSERT_TRUE(a.waitState(NatsLinkState::kConnected));
  ASSERT_TRUE(b.waitState(NatsLinkState::kConnected));
  // cnats re-sends SUB on reconnect, before anything published after it.
  ASSERT_TRUE(b.link->request(2, "nobody.listens", ""));
  ASSERT_TRUE(b.next([](const NatsInbound& i) { return i.request_id == 2; }));
  ASSERT_TRUE(a.link->publish("after.restart", "x"));
  auto got = b.next(messageOn("after.restart"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sub_id, 3u);
  const std::string text = registry.renderPrometheus();
  EXPECT_NE(text.find("wsfleet_nats_reconnects_total{link=\"b\"} 1"), std::string::npos) << text;
}

TEST(NatsLink, StartsWithoutAServerAndConnectsWhenOneAppears) {
  const TestPort reserved;
  const int port = reserved.port();
  MetricsRegistry registry;
  LinkUnderTest a("nats://127.0.0.1:" + std::to_string(port), registry, "early");
  EXPECT_NE(a.link->state(), NatsLinkState::kConnected);
  NatsServer server(port);
  EXPECT_TRUE(a.waitState(NatsLinkState::kConnected));
}

TEST(NatsLink, RefusesAnEmptyServerList) {
  MetricsRegistry registry;
  auto started = NatsLink::start(NatsLinkOptions{}, registry);
  ASSERT_FALSE(started.isOk());
  EXPECT_EQ(started.status().code(), Code::kConfig);
}

}  // namespace
}  // namespace wsfleet
