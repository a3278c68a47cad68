"""tools/run-demo, the README's first command, run for real: two regions on loopback (a
NATS server per region joined by gateways, an edge and a bridge per region) rendered from
conf/demo/, on ports moved by WSFLEET_DEMO_PORT_BASE and with the binaries of this build
(WSFLEET_BIN_DIR). The script must print working URLs and tokens for the demo
page (tools/demo/chat.html, loaded in headless Chromium and read over its DevTools
protocol: a user in eu sees the us user's message with its epoch and offset and the
presence of both regions, and what the page sends reaches us), and on SIGINT stop every
process it started and exit 0."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

import fleet as fleetm
import harness
import nats_cluster as natsc
from ports import free_port, free_port_block
from wsclient import WsClient

SCRIPT = harness.REPO_ROOT / "tools" / "run-demo"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
READY_LINE = "wsfleet demo: ready"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0
PAGE_TIMEOUT_S = 30.0
# Port offsets of conf/demo/ (184NN): NATS client, edge WebSocket, edge admin, bridge admin.
OFFSETS = {"us": {"nats": 1, "ws": 10, "admin": 11, "bridge": 12},
           "eu": {"nats": 21, "ws": 30, "admin": 31, "bridge": 32}}


def processes_under(run_dir):
    """{pid: command line} of every process whose command line names the run directory
    (the demo's NATS servers, edges and bridges all read their files there)."""
    found = {}
    needle = str(run_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            found[int(entry.name)] = cmd.strip()
    return found


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _as_in_a_terminal():
    """Runs in the child: SIGINT as a terminal's foreground job has it. A shell that
    started this test process in the background may have left it ignored, and bash
    cannot trap a signal ignored on entry."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """The running script: its output lines (stdout, collected by a thread) and what they
    say."""

    def __init__(self, run_dir, base, log_path):
        self.run_dir = run_dir
        self.base = base
        self.log_path = log_path
        self.lines = []
        env = dict(os.environ, WSFLEET_BIN_DIR=str(harness.bin_dir()),
                   WSFLEET_DEMO_DIR=str(run_dir), WSFLEET_DEMO_PORT_BASE=str(base),
                   WSFLEET_NATS_SERVER=natsc.NATS_SERVER)
        self.stderr = open(log_path, "wb")
        self.proc = subprocess.Popen([str(SCRIPT)], stdout=subprocess.PIPE,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=_as_in_a_terminal)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def port(self, region, what):
        return self.base + OFFSETS[region][what]

    def output(self):
        return "\n".join(self.lines)

    def stderr_text(self):
        return Path(self.log_path).read_text(errors="replace")

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while READY_LINE not in self.output():
            if self.proc.poll() is not None:
                self.reader.join(2)
                raise AssertionError(f"run-demo exited with {self.proc.returncode} before "
                                     f"being ready:\n{self.output()}\n{self.stderr_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"run-demo not ready within {READY_TIMEOUT_S}s:\n"
                                     f"{self.output()}\n{self.stderr_text()}")
            time.sleep(0.1)

    def page_url(self, region, user):
        for line in self.lines:
            line = line.strip()
            if line.startswith("file://") and f"region={region}&user={user}&" in line:
                return line
        raise AssertionError(f"no page URL for {user} in {region}:\n{self.output()}")

    def token(self, user):
        for line in self.lines:
            m = re.match(rf"\s+{user}\s+(\S+\.\S+\.\S+)$", line)
            if m:
                return m.group(1)
        raise AssertionError(f"no token for {user}:\n{self.output()}")

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        finally:
            self.reader.join(2)
            self.stderr.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not natsc.nats_server_available():
        pytest.skip(f"{natsc.NATS_SERVER} not installed (Debian package nats-server)")
    for b in (harness.edge_binary(), fleetm.bridge_binary(), harness.ctl_binary()):
        if not b.exists():
            pytest.fail(f"{b} does not exist (build wsfleet-edge, wsfleet-bridge and "
                        "wsfleetctl; WSFLEET_BIN_DIR names the directory)", pytrace=False)
    work = tmp_path_factory.mktemp("demo")
    run_dir = work / "run"
    d = Demo(run_dir, free_port_block(33), work / "run-demo.stderr")
    try:
        d.wait_ready()
        yield d
    finally:
        if d.proc.poll() is None:
            try:
                d.stop()
            except subprocess.TimeoutExpired:
                d.proc.kill()
        for pid in processes_under(run_dir):   # whatever a failed test left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ----------------------------------------------------------------------------- the DOM
class DemoDom(HTMLParser):
    """The messages (li.msg) and presence entries (li.member) of the dumped page."""

    def __init__(self, text):
        super().__init__()
        self.messages = []   # {"epoch","offset","from","text"}
        self.members = []    # (region, user)
        self.status = ""
        self._item = None
        self._span = ""
        self._in_status = False
        self.feed(text)

    def message(self, text):
        found = [m for m in self.messages if m["text"] == text]
        return found[0] if found else None

    def summary(self):
        return f"status: {self.status!r}\nmessages: {self.messages}\nmembers: {self.members}"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "li" and "msg" in classes:
            self._item = {"epoch": a.get("data-epoch"), "offset": int(a["data-offset"]),
                          "from": a.get("data-from"), "text": ""}
            self._span = ""
        elif self._item is not None and tag == "span":
            self._span = a.get("class") or ""
        if tag == "li" and "member" in classes:
            self.members.append((a.get("data-region"), a.get("data-user")))
        if a.get("id") == "status":
            self._in_status = True

    def handle_endtag(self, tag):
        if tag == "li" and self._item is not None:
            self.messages.append(self._item)
            self._item = None
        if tag == "div":
            self._in_status = False

    def handle_data(self, data):
        if self._item is not None and self._span == "text":
            self._item["text"] += data
        if self._in_status:
            self.status += data


def wait_page(browser, pred, what):
    """The page's DOM once pred(DemoDom) holds, or the last one seen after PAGE_TIMEOUT_S
    (the caller's assertions then say what is missing)."""
    seen = {}

    def check():
        seen["page"] = page = DemoDom(browser.dom())
        return bool(pred(page)) or None

    try:
        harness.wait_until(check, PAGE_TIMEOUT_S, interval=0.25, what=what)
    except AssertionError:
        if "page" not in seen:
            raise
    return seen["page"]


class HeadlessPage:
    """The page in headless Chromium, read over the DevTools protocol while it runs.
    (--dump-dom with --virtual-time-budget dumps once, at a moment of the page's virtual
    time that may come before its sockets answered: polling the live DOM until it shows
    what is expected, or a deadline passes, does not depend on that race.)"""

    def __init__(self, url, workdir):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / "chromium.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={workdir / 'profile'}",
             f"--remote-debugging-port={self.port}", url],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.cdp = None
        self._id = 0
        try:
            target = harness.wait_until(self._page_target, 30, interval=0.2,
                                        what="chromium's page target")
            path = urllib.parse.urlsplit(target["webSocketDebuggerUrl"]).path
            self.cdp = WsClient.connect("127.0.0.1", self.port, path=path, subprotocols=(),
                                        read_welcome=False, timeout=10)
        except BaseException:
            self.close()
            raise

    def _page_target(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"chromium exited with {self.proc.returncode}: "
                                 f"{self.log_path.read_text(errors='replace')[-2000:]}")
        try:
            r = harness.http(self.port, "GET", "/json/list", timeout=1.0)
        except OSError:
            return None
        if r.status != 200:
            return None
        pages = [t for t in json.loads(r.body) if t.get("type") == "page" and
                 t.get("url", "").startswith("file://")]
        return pages[0] if pages else None

    def evaluate(self, expression):
        self._id += 1
        cid = self._id
        self.cdp.send_json({"id": cid, "method": "Runtime.evaluate",
                            "params": {"expression": expression, "returnByValue": True}})
        r = self.cdp.recv_until(lambda f: f.get("id") == cid, timeout=10,
                                what="Runtime.evaluate answer")
        assert "result" in r and "exceptionDetails" not in r["result"], r
        return r["result"]["result"].get("value")

    def dom(self):
        # Empty while the page is still loading.
        return self.evaluate("document.documentElement ? document.documentElement.outerHTML"
                             " : ''") or ""

    def close(self):
        if self.cdp is not None:
            self.cdp.abort()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# ------------------------------------------------------------------------------- tests
def test_prints_working_urls_tokens_and_owners(demo):
    out = demo.output()
    for region in ("us", "eu"):
        assert f"ws://127.0.0.1:{demo.port(region, 'ws')}/ws" in out, out
    assert "us:lobby -> us (pin)" in out, out
    assert "eu:lobby -> eu (pin)" in out, out
    assert re.search(r"chat:lobby -> (us|eu) \(rendezvous\)", out), out

    # The printed tokens open sockets in both regions, as the user they name.
    for region, user in (("us", "alice"), ("eu", "bob"), ("eu", "alice")):
        c = WsClient.connect("127.0.0.1", demo.port(region, "ws"), token=demo.token(user))
        try:
            assert c.welcome["region"] == region, c.welcome
            r = c.request({"type": "subscribe", "channel": "eu:probe"})
            assert r["ok"] is True, r
        finally:
            c.close()

    # The page URLs name the page of this checkout, both regions and both tokens.
    url = demo.page_url("eu", "bob")
    parsed = urllib.parse.urlsplit(url)
    assert Path(urllib.parse.unquote(parsed.path)) == \
        harness.REPO_ROOT / "tools" / "demo" / "chat.html"
    q = urllib.parse.parse_qs(parsed.query)
    assert q["ws.us"] == [f"ws://127.0.0.1:{demo.port('us', 'ws')}/ws"]
    assert q["ws.eu"] == [f"ws://127.0.0.1:{demo.port('eu', 'ws')}/ws"]
    assert q["token.bob"] == [demo.token("bob")]
    assert q["channel"] == ["chat:lobby"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="chromium not installed (Debian package chromium; "
                           "tools/setup-deps --tests installs it)")
def test_page_in_eu_shows_us_messages_and_both_regions_presence(demo, tmp_path):
    url = demo.page_url("eu", "bob")
    channel = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["channel"][0]
    nonce = f"{os.getpid()}-{time.monotonic_ns()}"

    # alice, in region us, is in the channel and says something before bob's page opens.
    alice = WsClient.connect("127.0.0.1", demo.port("us", "ws"), token=demo.token("alice"))
    try:
        assert alice.request({"type": "subscribe", "channel": channel})["ok"] is True
        said = alice.request({"type": "publish", "channel": channel,
                              "data": {"text": f"hello from us {nonce}"},
                              "idempotency_key": f"alice-{nonce}"}, timeout=15)
        assert said["ok"] is True, said

        # bob's page in region eu; it also says something once joined (say=).
        reply_text = f"hello from eu {nonce}"
        browser = HeadlessPage(url + "&say=" + urllib.parse.quote(reply_text), tmp_path)
        try:
            page = wait_page(browser, lambda p: p.message(f"hello from us {nonce}") and
                             {("us", "alice"), ("eu", "bob")} <= set(p.members),
                             "alice's message and both users' presence")
            # alice's message, replayed from the channel's history in its owner region,
            # with the position the owner gave it.
            m = page.message(f"hello from us {nonce}")
            assert m and m["from"] == "alice", page.summary()
            assert (m["epoch"], m["offset"]) == (said["epoch"], said["offset"]), page.summary()
            # Presence of both regions: alice (subscribed in us), bob (the page, in eu).
            assert ("us", "alice") in page.members, page.summary()
            assert ("eu", "bob") in page.members, page.summary()
            assert ("us", "bob") not in page.members, page.summary()
            assert ("eu", "alice") not in page.members, page.summary()

            # A message alice says now reaches the open page live, across the regions.
            live = alice.request({"type": "publish", "channel": channel,
                                  "data": {"text": f"live from us {nonce}"},
                                  "idempotency_key": f"alice-live-{nonce}"}, timeout=15)
            assert live["ok"] is True, live
            page = wait_page(browser, lambda p: p.message(f"live from us {nonce}"),
                             "alice's live message")
            m = page.message(f"live from us {nonce}")
            assert m and (m["epoch"], m["offset"]) == (live["epoch"], live["offset"]), \
                page.summary()
        finally:
            browser.close()

        # What the page sent crossed to region us, stamped with bob's name.
        m = alice.recv_until(lambda f: f.get("type") == "message" and
                             f.get("data", {}).get("text") == reply_text, timeout=20,
                             what="the page's message in region us")
        assert m["from"] == "bob" and m["epoch"] == said["epoch"], m
        assert m["offset"] > said["offset"], m
    finally:
        alice.close()


def test_sigint_stops_every_process_and_exits_0(demo):
    started = processes_under(demo.run_dir)
    kinds = sorted(re.search(r"(nats-server|wsfleet-edge|wsfleet-bridge)", c).group(1)
                   for c in started.values() if re.search(r"nats-server|wsfleet-", c))
    assert kinds == ["nats-server"] * 2 + ["wsfleet-bridge"] * 2 + ["wsfleet-edge"] * 2, \
        started

    rc = demo.stop(signal.SIGINT)
    assert rc == 0, f"run-demo exited with {rc}\n{demo.stderr_text()}"
    left = processes_under(demo.run_dir)
    assert not left, f"left running after SIGINT: {left}"
    for region in ("us", "eu"):
        for what in ("nats", "ws", "admin", "bridge"):
            assert not listening(demo.port(region, what)), (region, what)
    err = demo.stderr_text()
    assert "stopped" in err, err
    assert "killed" not in err, err   # every process stopped on its signal, in time
