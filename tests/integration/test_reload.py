"""SIGHUP reload: keys, namespaces, tenants and run-time limits change without dropping a
connection; a broken file keeps the running config and counts an error; options that
need a restart are named in a warning and keep their running values."""

import signal

import pytest

from harness import hs256, namespaces, uniq, wait_until
from wsclient import ConnectionClosed, HandshakeRefused

NEW_SECRET = "rotated-secret-0123456789-0123456789-abcdef"


def reload(edge, result="ok"):
    """SIGHUP and wait until the edge has counted one more reload with `result`."""
    before = edge.metrics().value("wsfleet_config_reloads_total", result=result)
    edge.send_signal(signal.SIGHUP)
    wait_until(lambda: edge.metrics().value("wsfleet_config_reloads_total", result=result)
               > before, 5, what=f"reload counted as {result}")
    edge.check_alive()


def test_key_rotation_applies_to_new_handshakes_only(edge_factory):
    e = edge_factory()
    ch = uniq()
    old = e.connect("alice")  # signed with kid k1
    old.ok({"type": "subscribe", "channel": ch})
    with pytest.raises(HandshakeRefused):
        e.connect("bob", token=hs256("bob", kid="k3", secret=NEW_SECRET))

    demo_keys = e.conf["tenants"]["demo"]["keys"]
    e.conf["tenants"]["demo"]["keys"] = [{"kid": "k3", "alg": "HS256", "secret": NEW_SECRET}] + \
        [k for k in demo_keys if k["kid"] != "k1"]
    e.write_conf()
    reload(e)

    with pytest.raises(HandshakeRefused) as refused:
        e.connect("bob")  # kid k1, no longer configured
    assert refused.value.response.status == 401
    new = e.connect("bob", token=hs256("bob", kid="k3", secret=NEW_SECRET))
    # The connection authenticated with the old key stays and keeps receiving.
    new.ok({"type": "publish", "channel": ch, "data": "after rotation"})
    assert old.next_event("message")["data"] == "after rotation"
    old.ping()
    new.close()
    old.close()


def test_namespaces_and_limits_reload_without_dropping_connections(edge_factory):
    e = edge_factory()
    c = e.connect("alice")
    live = uniq("live")
    c.ok({"type": "subscribe", "channel": live})
    r = c.request({"type": "subscribe", "channel": "news:today"})
    assert r["ok"] is False and r["error"]["code"] == "not_found", r

    ns = namespaces()
    ns.pop("live")
    ns["news"] = {"history_size": 10, "ordering": "owner"}
    e.conf["tenants"]["demo"]["namespaces"] = ns
    e.conf["websocket"].update({"max_channels_per_connection": 2, "ping_interval_ms": 7000,
                                "max_message_bytes": 4096})
    e.write_conf()
    reload(e)

    # The subscription to the removed namespace was ended, with a notice.
    notice = c.recv_until(lambda f: f.get("type") == "reply" and "id" not in f, timeout=3,
                          what="unsubscribe notice")
    assert notice["ok"] is False and notice["error"]["code"] == "not_found", notice
    assert live in notice["error"]["message"], notice
    r = c.request({"type": "publish", "channel": live, "data": 1})
    assert r["ok"] is False and r["error"]["code"] == "not_found", r
    # The new namespace works on the same connection, and the new channel cap applies.
    c.ok({"type": "subscribe", "channel": "news:today"})
    c.ok({"type": "subscribe", "channel": uniq()})
    r = c.request({"type": "subscribe", "channel": uniq()})
    assert r["ok"] is False and r["error"]["code"] == "rate_limited", r
    c.ping()
    # New connections are told the new limits.
    fresh = e.connect("bob")
    assert fresh.welcome["ping_interval_ms"] == 7000, fresh.welcome
    assert fresh.welcome["max_message_bytes"] == 4096, fresh.welcome
    # And the inbound cap is the new one: a 5000-byte message closes with 1009.
    fresh.send_json({"type": "publish", "channel": uniq(), "data": "x" * 5000})
    assert fresh.expect_close() == 1009
    wait_until(lambda: e.metrics().value("wsfleet_connections_active") == 1, 3,
               what="only the first connection left")
    c.close()


def test_default_permissions_and_removed_tenant(edge_factory):
    e = edge_factory()
    alice = e.connect("alice")
    live = uniq("live")
    alice.ok({"type": "subscribe", "channel": live})
    other = e.connect("olga", tenant="other")

    e.update_conf({"tenants": {"demo": {"default_subs": ["chat:>"]},
                               "other": None}})  # None: removed
    reload(e)

    assert other.expect_close(timeout=5) == 4003
    notice = alice.recv_until(lambda f: f.get("type") == "reply" and "id" not in f, timeout=3,
                              what="unsubscribe notice")
    assert notice["error"]["code"] == "forbidden" and live in notice["error"]["message"], notice
    r = alice.request({"type": "subscribe", "channel": uniq("live")})
    assert r["ok"] is False and r["error"]["code"] == "forbidden", r
    alice.ok({"type": "subscribe", "channel": uniq()})
    with pytest.raises(HandshakeRefused) as refused:
        e.connect("olga", tenant="other")
    assert refused.value.response.status in (401, 403)
    r = e.api_publish(uniq(), 1, tenant="other")
    assert r.status == 401, r  # its API key went with it
    alice.close()


def test_broken_file_keeps_the_running_config(edge_factory):
    e = edge_factory()
    c = e.connect("alice")
    good = e.conf_path.read_text()
    e.conf_path.write_text(good.replace("max_channels_per_connection = 256",
                                        "max_channels_per_connection = \"many\"")
                           + "\n[nonsense]\nnot_an_option = 1\n")
    reload(e, result="error")
    log = e.log_text()
    assert "config_reload_error" in log
    assert f"{e.conf_path}:" in log, "errors are reported as FILE:LINE:COL"
    assert "nonsense" in log and "max_channels_per_connection" in log
    # Still the old config: the old key, the old namespaces, the open connection.
    c.ok({"type": "subscribe", "channel": uniq("live")})
    e.connect("bob").close()
    c.ping()
    # A fixed file reloads fine afterwards.
    e.conf_path.write_text(good)
    reload(e)
    c.close()


def test_restart_only_options_are_named_and_kept(edge_factory):
    e = edge_factory()
    c = e.connect("alice")
    old_admin = e.admin_port
    e.conf["admin"]["listen"] = "127.0.0.1:1"
    e.conf["presence"]["flush_ms"] = 50
    e.conf["websocket"]["ping_interval_ms"] = 9000
    e.write_conf()
    reload(e)
    assert e.admin_port == old_admin and e.admin("GET", "/healthz", api_key=None).status == 200
    log = e.log_text()
    assert "config_reload_restart_required" in log
    line = next(l for l in log.splitlines() if "config_reload_restart_required" in l)
    assert "admin.listen" in line and "presence.flush_ms" in line, line
    assert "ping_interval_ms" not in line, line
    assert e.connect("bob").welcome["ping_interval_ms"] == 9000
    c.ping()
    try:
        c.close()
    except ConnectionClosed:
        pass
