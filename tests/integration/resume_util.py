"""Helpers shared by the resume tests."""


def publish_n(client, channel, n, tag):
    """Publishes n messages {"tag", "i"} and returns their acked offsets."""
    return [client.ok({"type": "publish", "channel": channel, "data": {"tag": tag, "i": i}},
                      timeout=10)["offset"] for i in range(n)]


def messages(client, n, channel=None, timeout=5):
    out = []
    for _ in range(n):
        m = client.next_event("message", timeout=timeout)
        if channel is not None:
            assert m["channel"] == channel, m
        out.append(m)
    return out


def resubscribe(client, channel, epoch, offset):
    """Subscribes with since and checks that no message frame of the channel arrived
    before the reply (the reply comes first, then the replay)."""
    r = client.ok({"type": "subscribe", "channel": channel,
                   "since": {"epoch": epoch, "offset": offset}}, timeout=10)
    early = [f for f in client.backlog if f.get("type") == "message"
             and f.get("channel") == channel]
    assert not early, f"message frames before the subscribe reply: {early!r}"
    return r
