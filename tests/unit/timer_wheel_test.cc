#include "common/timer_wheel.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace wsfleet {
namespace {

TEST(TimerWheelTest, FiresInDeadlineOrderNeverEarly) {
  TimerWheel wheel(10, 8, 1000);
  std::vector<TimerNode> nodes(6);
  const uint64_t deadlines[] = {1000, 1009, 1010, 1075, 1080, 1333};  // up to 4 revolutions
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].tag = static_cast<int>(i);
    wheel.schedule(&nodes[i], deadlines[i]);
  }
  EXPECT_EQ(wheel.size(), 6u);
  std::vector<std::pair<int, uint64_t>> fired;
  for (uint64_t now = 999; now <= 1400; ++now) {
    wheel.advance(now, [&](TimerNode* n) {
      EXPECT_FALSE(n->scheduled());
      fired.emplace_back(n->tag, now);
    });
  }
  ASSERT_EQ(fired.size(), 6u);
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_EQ(fired[i].first, static_cast<int>(i));
    // Advanced every millisecond, so each fires exactly at its deadline: not early, not late.
    EXPECT_EQ(fired[i].second, deadlines[i]);
  }
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, CoarseAdvanceFiresExactlyTheDueOnes) {
  TimerWheel wheel(10, 16, 0);
  std::vector<TimerNode> nodes(300);
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].tag = static_cast<int>(i);
    wheel.schedule(&nodes[i], i * 7);  // spans many revolutions of 160 ms
  }
  std::set<int> fired;
  for (uint64_t now : {0u, 5u, 6u, 7u, 100u, 999u, 1000u, 2092u, 5000u}) {
    wheel.advance(now, [&](TimerNode* n) {
      EXPECT_LE(n->deadline_ms, now);
      EXPECT_TRUE(fired.insert(n->tag).second) << "fired twice: " << n->tag;
    });
    for (size_t i = 0; i < nodes.size(); ++i) {
      EXPECT_EQ(fired.count(static_cast<int>(i)) == 1, i * 7 <= now) << i << " at " << now;
    }
  }
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, BigJumpDoesNotWalkEveryTick) {
  // 1 ms ticks: a per-tick walk over ~11.6 days of ticks would not finish in test time.
  TimerWheel wheel(1, 64, 0);
  TimerNode soon, far, beyond;
  wheel.schedule(&soon, 5);
  wheel.schedule(&far, 1'000'000'000);
  wheel.schedule(&beyond, 5'000'000'000);
  int fired = 0;
  wheel.advance(1'000'000'000, [&](TimerNode*) { ++fired; });
  EXPECT_EQ(fired, 2);
  EXPECT_FALSE(soon.scheduled());
  EXPECT_FALSE(far.scheduled());
  EXPECT_TRUE(beyond.scheduled());
  // After the jump, new timers are placed relative to the new time.
  TimerNode next;
  wheel.schedule(&next, 1'000'000'010);
  wheel.advance(1'000'000'009, [&](TimerNode*) { ++fired; });
  EXPECT_EQ(fired, 2);
  wheel.advance(1'000'000'010, [&](TimerNode* n) {
    EXPECT_EQ(n, &next);
    ++fired;
  });
  EXPECT_EQ(fired, 3);
  wheel.advance(6'000'000'000, [&](TimerNode* n) {
    EXPECT_EQ(n, &beyond);
    ++fired;
  });
  EXPECT_EQ(fired, 4);
}

TEST(TimerWheelTest, PastDeadlinesFireOnNextAdvance) {
  TimerWheel wheel(10, 8, 10'000);
  TimerNode past, ancient;
  wheel.schedule(&past, 9'990);
  wheel.schedule(&ancient, 3);
  std::vector<TimerNode*> fired;
  // Same instant as construction: still fires both.
  wheel.advance(10'000, [&](TimerNode* n) { fired.push_back(n); });
  EXPECT_EQ(fired.size(), 2u);
  // A clock that steps back never makes a due timer wait for its slot to come round.
  wheel.advance(20'000, [&](TimerNode* n) { fired.push_back(n); });
  wheel.schedule(&past, 500);
  wheel.advance(19'000, [&](TimerNode* n) { fired.push_back(n); });
  ASSERT_EQ(fired.size(), 3u);
  EXPECT_EQ(fired[2], &past);
  // But a timer due after a stepped-back "now" is not fired early.
  wheel.schedule(&past, 19'500);
  wheel.advance(19'100, [&](TimerNode* n) { fired.push_back(n); });
  EXPECT_EQ(fired.size(), 3u);
  wheel.advance(19'500, [&](TimerNode* n) { fired.push_back(n); });
  EXPECT_EQ(fired.size(), 4u);
}

TEST(TimerWheelTest, CancelIsIdempotentAndPreventsFiring) {
  TimerWheel wheel(5, 4, 0);
  TimerNode a, b, never;
  wheel.cancel(&never);  // never scheduled: no-op
  wheel.schedule(&a, 10);
  wheel.schedule(&b, 10);
  EXPECT_EQ(wheel.size(), 2u);
  wheel.cancel(&a);
  wheel.cancel(&a);
  EXPECT_FALSE(a.scheduled());
  EXPECT_EQ(wheel.size(), 1u);
  // Rescheduling a scheduled node moves it rather than adding a second entry.
  wheel.schedule(&b, 12);
  wheel.schedule(&b, 30);
  EXPECT_EQ(wheel.size(), 1u);
  int fired = 0;
  wheel.advance(29, [&](TimerNode*) { ++fired; });
  EXPECT_EQ(fired, 0);
  wheel.advance(30, [&](TimerNode* n) {
    EXPECT_EQ(n, &b);
    ++fired;
  });
  EXPECT_EQ(fired, 1);
  wheel.cancel(&b);  // already fired: no-op
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, CallbackMayCancelOrDestroyOtherDueNodes) {
  TimerWheel wheel(10, 4, 0);
  // All in one slot, so the callback cancels nodes the walk has not reached yet.
  std::vector<std::unique_ptr<TimerNode>> nodes;
  for (int i = 0; i < 6; ++i) {
    nodes.push_back(std::make_unique<TimerNode>());
    nodes.back()->tag = i;
    wheel.schedule(nodes.back().get(), 40);
  }
  std::vector<int> fired;
  wheel.advance(40, [&](TimerNode* n) {
    fired.push_back(n->tag);
    // Each firing node tears down every other live node after it (cancel, then destroy).
    for (auto& other : nodes) {
      if (other && other.get() != n && other->scheduled()) {
        wheel.cancel(other.get());
        other.reset();
      }
    }
  });
  EXPECT_EQ(fired.size(), 1u);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, RescheduleFromCallback) {
  TimerWheel wheel(10, 8, 0);
  TimerNode periodic, eager;
  wheel.schedule(&periodic, 25);
  wheel.schedule(&eager, 25);
  std::vector<std::pair<TimerNode*, uint64_t>> fired;
  auto fire = [&](uint64_t now) {
    return [&fired, &wheel, &periodic, &eager, now](TimerNode* n) {
      fired.emplace_back(n, now);
      if (n == &periodic) wheel.schedule(n, n->deadline_ms + 100);  // a later revolution
      // Re-armed at a deadline already due, in the very slot being walked: the semantics
      // are that it waits for the next advance() call, so this cannot loop forever.
      if (n == &eager) wheel.schedule(n, now);
    };
  };
  wheel.advance(30, fire(30));
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_TRUE(periodic.scheduled());
  EXPECT_TRUE(eager.scheduled());
  EXPECT_EQ(wheel.size(), 2u);
  wheel.advance(30, fire(30));  // same time: only the eager one, once more
  ASSERT_EQ(fired.size(), 3u);
  EXPECT_EQ(fired[2].first, &eager);
  wheel.cancel(&eager);
  wheel.advance(124, fire(124));
  EXPECT_EQ(fired.size(), 3u);
  wheel.advance(1000, fire(1000));
  // periodic was due at 125; fired once, re-armed for 225, which is also <= 1000 but
  // was scheduled during that call, so it waits for the next.
  ASSERT_EQ(fired.size(), 4u);
  EXPECT_EQ(fired[3].first, &periodic);
  EXPECT_EQ(periodic.deadline_ms, 225u);
  wheel.advance(1000, fire(1000));
  EXPECT_EQ(fired.size(), 5u);
  wheel.cancel(&periodic);
}

TEST(TimerWheelTest, CallbackMayScheduleNewNodesAndRescheduleUnvisitedOnes) {
  TimerWheel wheel(10, 8, 0);
  TimerNode a, b, fresh;
  wheel.schedule(&a, 50);
  wheel.schedule(&b, 50);
  int fired_a = 0, fired_b = 0, fired_fresh = 0;
  auto fire = [&](TimerNode* n) {
    if (n == &fresh) {
      ++fired_fresh;
      return;
    }
    TimerNode* other = n == &a ? &b : &a;
    (n == &a ? fired_a : fired_b)++;
    // Push the other one (due, maybe not yet visited) to the future.
    if (other->scheduled()) wheel.schedule(other, 500);
    wheel.schedule(&fresh, 40);  // already due: next advance
  };
  wheel.advance(60, fire);
  EXPECT_EQ(fired_a + fired_b, 1);
  EXPECT_EQ(fired_fresh, 0);
  EXPECT_EQ(wheel.size(), 2u);
  wheel.advance(61, fire);
  EXPECT_EQ(fired_fresh, 1);
  wheel.advance(500, fire);
  EXPECT_EQ(fired_a, 1);
  EXPECT_EQ(fired_b, 1);
  wheel.advance(501, fire);
  EXPECT_EQ(fired_fresh, 2);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, DestroyingWheelReleasesPendingNodes) {
  TimerNode a;
  {
    TimerWheel wheel(10, 4, 0);
    wheel.schedule(&a, 1000);
    EXPECT_TRUE(a.scheduled());
  }
  EXPECT_FALSE(a.scheduled());
}

// Randomised operations checked against a reference model (deadline -> node).
TEST(TimerWheelTest, MatchesReferenceModel) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    const uint64_t tick = 1 + rng() % 20;
    const size_t slots = 1 + rng() % 40;
    uint64_t now = rng() % 100'000;
    TimerWheel wheel(tick, slots, now);
    constexpr int kNodes = 200;
    std::vector<TimerNode> nodes(kNodes);
    std::multimap<uint64_t, int> model;
    std::vector<std::multimap<uint64_t, int>::iterator> where(kNodes, model.end());
    std::vector<bool> armed_during_advance(kNodes, false);
    bool in_advance = false;
    for (int i = 0; i < kNodes; ++i) nodes[i].tag = i;

    auto random_deadline = [&]() -> uint64_t {
      switch (rng() % 4) {
        case 0:
          return now > 50 ? now - rng() % 50 : 0;  // in the past
        case 1:
          return now + rng() % (tick * 3);  // within a few ticks
        case 2:
          return now + rng() % (tick * slots * 4 + 1);  // several revolutions
        default:
          return now + rng() % 1'000'000;
      }
    };
    auto model_schedule = [&](int id, uint64_t deadline) {
      if (where[id] != model.end()) model.erase(where[id]);
      where[id] = model.emplace(deadline, id);
      armed_during_advance[id] = in_advance;
      wheel.schedule(&nodes[id], deadline);
    };
    auto model_cancel = [&](int id) {
      if (where[id] != model.end()) model.erase(where[id]);
      where[id] = model.end();
      wheel.cancel(&nodes[id]);
    };

    for (int step = 0; step < 3000; ++step) {
      const int id = static_cast<int>(rng() % kNodes);
      const uint64_t op = rng() % 10;
      if (op < 5) {
        model_schedule(id, random_deadline());
      } else if (op < 7) {
        model_cancel(id);
      } else {
        uint64_t next = now;
        switch (rng() % 4) {
          case 0:
            break;  // same time again
          case 1:
            next = now + rng() % (tick * 2);
            break;
          case 2:
            next = now + rng() % (tick * slots * 3);
            break;
          default:
            next = now + rng() % 2'000'000;  // many revolutions
        }
        now = next;
        in_advance = true;
        std::fill(armed_during_advance.begin(), armed_during_advance.end(), false);
        wheel.advance(now, [&](TimerNode* n) {
          const int fid = n->tag;
          ASSERT_NE(where[fid], model.end()) << "fired a node that is not scheduled";
          EXPECT_LE(where[fid]->first, now) << "fired early";
          EXPECT_EQ(where[fid]->first, n->deadline_ms);
          EXPECT_FALSE(armed_during_advance[fid]) << "fired in the call that armed it";
          model.erase(where[fid]);
          where[fid] = model.end();
          // Callbacks mutate the wheel: re-arm self, cancel or move another.
          const int other = static_cast<int>(rng() % kNodes);
          switch (rng() % 5) {
            case 0:
              model_schedule(fid, random_deadline());
              break;
            case 1:
              model_cancel(other);
              break;
            case 2:
              model_schedule(other, random_deadline());
              break;
            default:
              break;
          }
        });
        in_advance = false;
        // Everything due that was armed before the call has fired.
        for (auto it = model.begin(); it != model.end() && it->first <= now; ++it) {
          EXPECT_TRUE(armed_during_advance[it->second])
              << "seed " << seed << ": node " << it->second << " due at " << it->first
              << " not fired at " << now;
        }
      }
      ASSERT_EQ(wheel.size(), model.size()) << "seed " << seed;
      if (::testing::Test::HasFailure()) return;
    }
    for (int i = 0; i < kNodes; ++i) wheel.cancel(&nodes[i]);
  }
}

TEST(TimerWheelTest, MillionNodes) {
  // Timing is not asserted; this shows schedule/cancel/advance stay O(1) per node
  // (a sorted structure or a per-tick walk would make it crawl).
  constexpr size_t kCount = 1'000'000;
  TimerWheel wheel(10, 4096, 0);
  std::vector<TimerNode> nodes(kCount);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < kCount; ++i) wheel.schedule(&nodes[i], rng() % 120'000);
  for (size_t i = 0; i < kCount; i += 2) wheel.cancel(&nodes[i]);
  EXPECT_EQ(wheel.size(), kCount / 2);
  size_t fired = 0;
  uint64_t last_deadline_seen = 0;
  for (uint64_t now = 0; now <= 120'000; now += 10) {
    wheel.advance(now, [&](TimerNode* n) {
      ++fired;
      last_deadline_seen = std::max(last_deadline_seen, n->deadline_ms);
      EXPECT_LE(n->deadline_ms, now);
    });
  }
  EXPECT_EQ(fired, kCount / 2);
  EXPECT_EQ(wheel.size(), 0u);
  for (size_t i = 0; i < kCount; ++i) ASSERT_FALSE(nodes[i].scheduled());
}

#ifndef NDEBUG
TEST(TimerWheelDeathTest, DestroyingScheduledNodeAsserts) {
  EXPECT_DEATH(
      {
        TimerWheel wheel(10, 4, 0);
        auto node = std::make_unique<TimerNode>();
        wheel.schedule(node.get(), 100);
        node.reset();
      },
      "scheduled");
}
#endif

}  // namespace
}  // namespace wsfleet
