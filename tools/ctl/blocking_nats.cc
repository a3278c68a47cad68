#include "tools/ctl/blocking_nats.h"

#include <poll.h>

#include <algorithm>

#include "common/clock.h"

namespace wsfleet::ctl {

template <typename Done>
bool BlockingNats::waitFor(int64_t deadline_mono_ms, Done done) {
  std::vector<NatsInbound> items;
  for (;;) {
    items.clear();
    link_->takeInbound(items);
    for (NatsInbound& item : items) {
      if (done(item)) return true;
    }
    const int64_t left = deadline_mono_ms - nowMonoMs();
    if (left <= 0) return false;
    pollfd pfd{link_->wakeFd(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
  }
}

Result<std::unique_ptr<BlockingNats>> BlockingNats::connect(const NatsConfig& nats,
                                                            int64_t timeout_ms) {
  NatsLinkOptions options = natsLinkOptions(nats);
  options.name = "wsfleetctl";
  std::unique_ptr<BlockingNats> client(new BlockingNats());
  WSF_ASSIGN_OR_RETURN(client->link_, NatsLink::start(std::move(options), client->registry_));
  const bool up = client->link_->state() == NatsLinkState::kConnected ||
                  client->waitFor(nowMonoMs() + timeout_ms, [](const NatsInbound& item) {
                    return item.kind == NatsInbound::Kind::kState &&
                           item.state == NatsLinkState::kConnected;
                  });
  if (!up) {
    return Status(Code::kUnavailable, "nats_unreachable",
                  "no NATS server answered within " + std::to_string(timeout_ms) + " ms");
  }
  return client;
}

Result<NatsInbound> BlockingNats::request(std::string subject, std::string data,
                                          std::vector<NatsHeader> headers, int64_t timeout_ms) {
  const uint64_t id = next_request_id_++;
  const std::string what = subject;
  if (!link_->request(id, std::move(subject), std::move(data), std::move(headers))) {
    return Status(Code::kUnavailable, "nats_queue_full", "the NATS link refused the request");
  }
  NatsInbound reply;
  const bool answered = waitFor(nowMonoMs() + timeout_ms, [&](NatsInbound& item) {
    if (item.kind != NatsInbound::Kind::kReply || item.request_id != id) return false;
    reply = std::move(item);
    return true;
  });
  if (!answered) {
    return Status(Code::kUnavailable, "nats_no_reply", "no reply to " + what + " in time");
  }
  return reply;
}

std::vector<BlockingNats::Gathered> BlockingNats::gather(const std::vector<Ask>& asks,
                                                        int64_t window_ms, size_t max_replies) {
  std::vector<Gathered> out(asks.size());
  const uint64_t first = next_request_id_;
  next_request_id_ += asks.size();
  size_t open = 0;
  for (size_t i = 0; i < asks.size(); ++i) {
    if (link_->request(first + i, asks[i].subject, asks[i].data)) {
      ++open;
    } else {
      out[i].refused = true;
    }
  }
  if (open == 0) return out;
  waitFor(nowMonoMs() + window_ms, [&](NatsInbound& item) {
    if (item.kind != NatsInbound::Kind::kReply || item.request_id < first ||
        item.request_id >= first + asks.size()) {
      return false;
    }
    Gathered& g = out[item.request_id - first];
    if (item.status == "503") {
      // Only ever the first word on a subject nobody listens on.
      if (g.replies.empty() && !g.no_responders) {
        g.no_responders = true;
        --open;
      }
      return open == 0;
    }
    if (g.replies.size() < max_replies) {
      g.replies.push_back(std::move(item.data));
    } else {
      ++g.over_limit;
    }
    return false;
  });
  return out;
}

}  // namespace wsfleet::ctl
