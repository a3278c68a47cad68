"""`wsfleetctl topology check` and `wsfleetctl topology owner` on real files."""

import subprocess

import harness

SAMPLE = harness.REPO_ROOT / "conf" / "topology.toml"


def ctl(*args):
    return subprocess.run([str(harness.ctl_binary()), "topology", *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def region_block(name, subnet, failover, weight=100):
    return (f'[[regions]]\nname = "{name}"\nnats_urls = ["nats://10.0.0.1:4222"]\n'
            f'public_urls = ["wss://{name}.example.com/ws"]\n'
            f'client_subnets = ["{subnet}"]\nfailover = {failover}\nweight = {weight}\n\n')


def three_regions():
    return (region_block("us-east", "10.10.0.0/16", '["eu-west", "ap-south"]', 200)
            + region_block("eu-west", "10.20.0.0/16", '["us-east", "ap-south"]')
            + region_block("ap-south", "10.30.0.0/16", '["eu-west", "us-east"]'))


def line_of(text, marker):
    return text[:text.index(marker)].count("\n") + 1


def test_check_sample_ok():
    r = ctl("check", SAMPLE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{SAMPLE}: ok (3 region(s), 0 pin(s), 0 move(s))"


def test_check_reports_every_error_with_file_and_line(tmp_path):
    text = three_regions()
    text = text.replace('failover = ["us-east", "ap-south"]', 'failover = ["us-east", "mars"]')
    text = text.replace('client_subnets = ["10.30.0.0/16"]', 'client_subnets = ["10.20.5.0/24"]')
    text = text.replace("weight = 200", "weight = 5000")
    path = tmp_path / "topology.toml"
    path.write_text(text)
    r = ctl("check", path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 3, r.stderr
    expected = [
        (line_of(text, "weight = 5000"), "regions[0].weight: 5000 is out of range"),
        (line_of(text, '"mars"'), "regions[1].failover[1]: 'mars' is not a region"),
        (line_of(text, "10.20.5.0/24"),
         "'10.20.5.0/24' is inside '10.20.0.0/16' of region 'eu-west'"),
    ]
    for error, (line, message) in zip(errors, expected):
        file_name, line_no, column, rest = error.split(":", 3)
        assert file_name == str(path), error
        assert int(line_no) == line and column.isdigit(), (error, line)
        assert message in rest, error


def test_check_missing_file(tmp_path):
    r = ctl("check", tmp_path / "absent.toml")
    assert r.returncode == 2
    assert "absent.toml" in r.stderr


def test_owner_follows_health_pins_and_moves(tmp_path):
    path = tmp_path / "topology.toml"
    path.write_text(three_regions())
    # acme/chat:random hashes to us-east (the golden values of the unit tests).
    r = ctl("owner", path, "--tenant", "acme", "--channel", "chat:random")
    assert (r.returncode, r.stdout.strip()) == (0, "us-east (rendezvous)"), r.stderr
    r = ctl("owner", path, "--tenant", "acme", "--channel", "chat:random", "--down", "us-east")
    assert (r.returncode, r.stdout.strip()) == (0, "eu-west (rendezvous)"), r.stderr

    path.write_text(three_regions() + '[[moves]]\ntenant = "acme"\nchannel = "chat:random"\n'
                    'region = "ap-south"\n')
    r = ctl("owner", path, "--tenant", "acme", "--channel", "chat:random")
    assert (r.returncode, r.stdout.strip()) == (0, "ap-south (move)"), r.stderr
    # ap-south down: its failover list names eu-west first.
    r = ctl("owner", path, "--tenant", "acme", "--channel", "chat:random", "--down", "ap-south")
    assert (r.returncode, r.stdout.strip()) == (0, "eu-west (move-failover)"), r.stderr


def test_owner_of_a_user_and_errors(tmp_path):
    r = ctl("owner", SAMPLE, "--tenant", "acme", "--user", "alice")
    assert (r.returncode, r.stdout.strip()) == (0, "eu-west (home of acme/alice)"), r.stderr
    everything_down = ["--down", "us-east", "--down", "eu-west", "--down", "ap-south"]
    r = ctl("owner", SAMPLE, "--tenant", "acme", "--channel", "chat:x", *everything_down)
    assert r.returncode == 1 and "no region of the topology is healthy" in r.stderr
    r = ctl("owner", SAMPLE, "--tenant", "acme", "--channel", "chat:x", "--down", "mars")
    assert r.returncode == 2 and "'mars' is not a region" in r.stderr
    r = ctl("owner", SAMPLE, "--tenant", "acme", "--channel", "nonamespace")
    assert r.returncode == 2, r.stdout
