"""The edge's NATS link: credentials, TLS, readiness and configuration errors."""

import datetime
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import harness


def region_conf(urls, **nats):
    conf = {"node": {"region": "eu"},
            "nats": {"servers": urls, "history_replicas": 1, "reconnect_wait_ms": 50}}
    conf["nats"].update(nats)
    return conf


def ready_status(edge):
    """The /readyz status, or None while the admin listener is not up yet."""
    try:
        return harness.http(edge.admin_port, "GET", "/readyz", timeout=2).status
    except OSError:
        return None


def test_token_auth_right_and_wrong(nats_cluster_factory, edge_factory, cx):
    cluster = nats_cluster_factory(n=1, token="s3cret-token-for-the-region")
    good = edge_factory(region_conf(cluster.urls, token="s3cret-token-for-the-region"))
    alice = cx(good, "alice")
    reply = alice.request({"type": "publish", "channel": harness.uniq("chat"), "data": {}})
    assert reply["ok"] and reply["offset"] >= 1, reply

    bad = edge_factory(region_conf(cluster.urls, token="wrong-token"), start=False)
    bad.start(wait=False)
    # Alive and serving health, but never ready: it cannot reach the region.
    harness.wait_until(lambda: "nats_link_closed" in bad.log_text(), 10,
                       what="the refused login to be logged")
    r = harness.http(bad.admin_port, "GET", "/readyz", timeout=2)
    assert r.status == 503 and b"region" in r.body, r
    m = bad.metrics()
    assert m.value("wsfleet_nats_connected", worker="0") == 0
    bad.check_alive()


def test_user_and_password(nats_cluster_factory, edge_factory, cx):
    cluster = nats_cluster_factory(n=1, user="edge", password="edge-password-123")
    e = edge_factory(region_conf(cluster.urls, user="edge", password="edge-password-123"))
    assert cx(e, "bob").request({"type": "subscribe", "channel": harness.uniq("chat")})["ok"]


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsfleet test nats")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path = tmp_path / "nats-cert.pem"
    key_path = tmp_path / "nats-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_to_the_servers(nats_cluster_factory, edge_factory, cx, tmp_path):
    cert, key = _self_signed(tmp_path)
    cluster = nats_cluster_factory(
        n=1, extra_conf=f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}')
    tls_urls = [u.replace("nats://", "tls://") for u in cluster.urls]
    e = edge_factory(region_conf(tls_urls, tls_ca=str(cert)))
    alice = cx(e, "alice")
    channel = harness.uniq("chat")
    assert alice.request({"type": "subscribe", "channel": channel})["ok"]
    reply = alice.request({"type": "publish", "channel": channel, "data": {"over": "tls"}})
    assert reply["ok"], reply
    assert alice.next_event("message")["data"] == {"over": "tls"}

    # Without the CA the server's certificate is not trusted: never ready.
    untrusting = edge_factory(region_conf(tls_urls), start=False)
    untrusting.start(wait=False)
    harness.wait_until(lambda: "nats_link_closed" in untrusting.log_text()
                       or "nats_error" in untrusting.log_text(), 10,
                       what="the refused TLS handshake to be logged")
    assert ready_status(untrusting) == 503
    untrusting.check_alive()


@pytest.mark.parametrize("servers,message", [
    (["http://127.0.0.1:4222"], "must start with nats:// or tls://"),
    (["nats://user:pw@127.0.0.1:4222"], "credentials do not belong in the URL"),
    (["nats://127.0.0.1"], "is not nats://host:port"),
    (["nats://bad host:4222"], "is not nats://host:port"),
])
def test_bad_server_urls_are_config_errors(tmp_path, servers, message):
    e = harness.Edge(tmp_path, {"nats": {"servers": servers}})
    out = subprocess.run([str(harness.edge_binary()), "--check-config", str(e.conf_path)],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2, out
    assert message in out.stderr + out.stdout
    assert "edge.toml:" in out.stderr + out.stdout  # file:line


def test_conflicting_credentials_are_config_errors(tmp_path):
    e = harness.Edge(tmp_path, {"nats": {"servers": ["nats://127.0.0.1:4222"],
                                         "token": "a-token", "user": "u"}})
    out = subprocess.run([str(harness.edge_binary()), "--check-config", str(e.conf_path)],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert "at most one of nats.token, nats.user and nats.creds_file" in out.stderr + out.stdout


def test_a_refused_link_recovers_once_the_servers_accept_it(nats_cluster_factory, edge_factory):
    cluster = nats_cluster_factory(n=1, token="the-old-token-0123")
    e = edge_factory(region_conf(cluster.urls, token="the-new-token-4567"), start=False)
    e.start(wait=False)
    harness.wait_until(lambda: "nats_link_closed" in e.log_text(), 10,
                       what="the refused login to be logged")
    assert ready_status(e) == 503
    # The operator rolls the new token out on the servers: no edge restart needed.
    server = cluster.servers[0]
    server.stop()
    server.token = "the-new-token-4567"
    server.write_conf()
    server.start()
    e.wait_ready(timeout=15)
    assert e.metrics().value("wsfleet_nats_connected", worker="0") == 1
