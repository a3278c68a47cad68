"""wss: the edge serves TLS with a configured certificate and key."""

import datetime
import ipaddress
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wsclient import WsClient


def make_cert(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsfleet-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture
def tls_edge(edge_factory, tmp_path):
    cert, key = make_cert(tmp_path)
    e = edge_factory({"websocket": {"tls_cert": str(cert), "tls_key": str(key)}})
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    ctx.check_hostname = False
    e.tls_context = ctx
    e.cert_path = cert
    return e


def test_wss_welcome(tls_edge, cx):
    c = cx(tls_edge)
    assert c.welcome["type"] == "welcome"
    assert isinstance(c.sock, ssl.SSLSocket)
    c.ping()
    ch = "chat:tls"
    c.ok({"type": "subscribe", "channel": ch})
    c.ok({"type": "publish", "channel": ch, "data": {"big": "x" * 40000}})
    assert c.next_event("message")["data"] == {"big": "x" * 40000}


def test_wss_certificate_is_the_configured_one(tls_edge):
    ctx = ssl.create_default_context(cafile=str(tls_edge.cert_path))
    ctx.check_hostname = True
    with socket.create_connection(("127.0.0.1", tls_edge.ws_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_wss_refusal_is_http_over_tls(tls_edge):
    from wsclient import HandshakeRefused
    with pytest.raises(HandshakeRefused) as info:
        WsClient.connect("127.0.0.1", tls_edge.ws_port, tls_context=tls_edge.tls_context)
    assert info.value.response.status == 401


def test_plaintext_client_on_tls_port_is_dropped(tls_edge):
    with socket.create_connection(("127.0.0.1", tls_edge.ws_port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"HTTP/1.1 101")
    tls_edge.assert_serving()


def test_tls_handshake_garbage(tls_edge):
    with socket.create_connection(("127.0.0.1", tls_edge.ws_port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05" + b"\xff" * 5)
        s.settimeout(10)
        try:
            s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            pass
    tls_edge.assert_serving()
