"""`wsfleet-edge --check-config` and starting with a bad configuration."""

import subprocess

import pytest

import harness

REPO_ROOT = harness.REPO_ROOT


def check(path):
    return subprocess.run([str(harness.edge_binary()), "--check-config", str(path)],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def conf_edge(tmp_path):
    # An Edge that is configured but never started: only its conf file is used.
    return harness.Edge(tmp_path)


def _write_with_line(conf_edge, section, extra):
    """Appends `extra` to [section] by rewriting the file; returns its 1-based line."""
    text = conf_edge.conf_path.read_text().splitlines()
    idx = text.index(f"[{section}]")
    text.insert(idx + 1, extra)
    conf_edge.conf_path.write_text("\n".join(text) + "\n")
    return idx + 2


def test_valid_config_exits_0(conf_edge):
    r = check(conf_edge.conf_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("section,line", [
    ("websocket", "no_such_option = 1"),
    ("websocket", 'max_message_bytes = "big"'),
    ("websocket", "ping_interval_ms = 500"),
    ("node", 'log_level = "loud"'),
    ("tenants.demo.namespaces.chat", 'ordering = "random"'),
])
def test_invalid_config_reports_file_line_col(conf_edge, section, line):
    key = line.split("=")[0].strip()
    table = conf_edge.conf
    for part in section.split("."):
        table = table[part]
    if key in table:  # replace, not redefine (a redefinition is another error)
        del table[key]
        conf_edge.write_conf()
    lineno = _write_with_line(conf_edge, section, line)
    r = check(conf_edge.conf_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    prefix = f"{conf_edge.conf_path}:{lineno}:"
    assert any(ln.startswith(prefix) for ln in r.stderr.splitlines()), \
        f"no '{prefix}COL: message' line in:\n{r.stderr}"
    for ln in r.stderr.strip().splitlines():
        parts = ln.split(":", 3)
        if ln.startswith(str(conf_edge.conf_path)):
            assert parts[1].isdigit() and parts[2].isdigit(), ln


def test_all_errors_reported_at_once(conf_edge):
    l1 = _write_with_line(conf_edge, "node", "bogus_one = 1")
    l2 = _write_with_line(conf_edge, "presence", "bogus_two = 2")
    r = check(conf_edge.conf_path)
    assert r.returncode == 2
    assert f":{l1}:" in r.stderr and f":{l2}:" in r.stderr, r.stderr


def test_toml_syntax_error(conf_edge):
    conf_edge.conf_path.write_text("[node\nname = 1\n")
    r = check(conf_edge.conf_path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{conf_edge.conf_path}:1:"), r.stderr


def test_missing_file(tmp_path):
    r = check(tmp_path / "absent.toml")
    assert r.returncode != 0
    assert "absent.toml" in r.stderr


def test_missing_es256_key_file(conf_edge):
    conf_edge.conf["tenants"]["demo"]["keys"][1]["public_key_file"] = "missing.pem"
    conf_edge.write_conf()
    r = check(conf_edge.conf_path)
    assert r.returncode == 2, r.stderr
    assert str(conf_edge.conf_path) in r.stderr


def test_short_hs256_secret_refused(conf_edge):
    conf_edge.conf["tenants"]["demo"]["keys"][0]["secret"] = "short"
    conf_edge.write_conf()
    r = check(conf_edge.conf_path)
    assert r.returncode == 2, r.stderr


def test_start_with_bad_config_fails_cleanly(conf_edge):
    _write_with_line(conf_edge, "websocket", "nope = true")
    p = subprocess.run([str(harness.edge_binary()), "--config", str(conf_edge.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode not in (0,) and p.returncode > 0, (p.returncode, p.stderr)
    assert str(conf_edge.conf_path) in p.stderr


def test_shipped_sample_config_is_valid():
    sample = REPO_ROOT / "conf" / "edge.toml"
    assert sample.exists(), "conf/edge.toml (the sample the protocol promises) is missing"
    r = check(sample)
    assert r.returncode == 0, r.stderr
