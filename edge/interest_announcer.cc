#include "edge/interest_announcer.h"

#include "common/json.h"
#include "edge/region.h"

namespace wsfleet {

namespace {

// Announcements are split at about this size (NATS' default max payload is 1 MB).
constexpr size_t kMaxMessageBytes = 256 * 1024;

}  // namespace

InterestAnnouncer::InterestAnnouncer(Region& region, std::string subject, std::string source,
                                     int64_t refresh_ms)
    : region_(region),
      subject_(std::move(subject)),
      source_(std::move(source)),
      refresh_ms_(refresh_ms) {}

void InterestAnnouncer::add(const std::string& owner, const std::string& tail) {
  Key key{owner, tail};
  if (!current_.insert(key).second) return;
  if (removed_.erase(key) == 0) added_.insert(std::move(key));
}

void InterestAnnouncer::remove(const std::string& owner, const std::string& tail) {
  Key key{owner, tail};
  if (current_.erase(key) == 0) return;
  if (added_.erase(key) == 0) removed_.insert(std::move(key));
}

void InterestAnnouncer::tick(int64_t now_mono_ms) {
  if (!region_.connected()) {
    // The bridges may have forgotten this worker meanwhile: the whole set goes out as
    // soon as the link is back.
    next_snapshot_ms_ = 0;
    return;
  }
  if (now_mono_ms >= next_snapshot_ms_) {
    next_snapshot_ms_ = now_mono_ms + refresh_ms_;
    added_.clear();
    removed_.clear();
    send(true, current_, {});
    return;
  }
  if (added_.empty() && removed_.empty()) return;
  send(false, added_, removed_);
  added_.clear();
  removed_.clear();
}

void InterestAnnouncer::send(bool snapshot, const std::set<Key>& add, const std::set<Key>& del) {
  // A snapshot too large for one message goes out as one snapshot and then deltas.
  auto a = add.begin();
  auto d = del.begin();
  bool first = true;
  do {
    std::string body;
    JsonWriter w(body);
    w.beginObject()
        .field("source", source_)
        .fieldInt("refresh_ms", refresh_ms_)
        .fieldBool("snapshot", snapshot && first)
        .key("add")
        .beginArray();
    for (; a != add.end() && body.size() < kMaxMessageBytes; ++a) {
      w.beginArray().string(a->first).string(a->second).endArray();
    }
    w.endArray().key("del").beginArray();
    for (; d != del.end() && body.size() < kMaxMessageBytes; ++d) {
      w.beginArray().string(d->first).string(d->second).endArray();
    }
    w.endArray().endObject();
    region_.publish(subject_, std::move(body));
    first = false;
  } while (a != add.end() || d != del.end());
}

void InterestAnnouncer::goodbye() {
  std::string body;
  JsonWriter(body).beginObject().field("source", source_).fieldBool("bye", true).endObject();
  region_.publish(subject_, std::move(body));
}

}  // namespace wsfleet
