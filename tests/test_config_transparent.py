"""Transparent mode's config ($.routes, $.capture, capture and transparent tunnels,
allow[].reach): every bad value refused by both `check` and `run` with exit 2 and one line
naming the JSON path, and the valid shapes accepted. The traffic itself is
tests/test_transparent.py's; the nftables rules tests/test_capture.py's."""

import copy
import json
import signal
import socket

import pytest

from test_config import assert_refused, base_config, run_fedgate, write_config


def transparent_config(pki):
    """base_config() plus a route, a capture tunnel of each kind and a transparent one."""
    cfg = base_config(pki)
    cfg["routes"] = [{"to": ["10.20.0.0/16", "fd20::/64"], "ports": ["1-65535"],
                      "peer": "127.0.0.1:8443", "server_name": "bar.internal",
                      "allow": [{"dns": "bar.internal"}]}]
    cfg["capture"] = {"mark": 17991, "tproxy_mark": 17992, "route_table": 17991}
    cfg["tunnels"] += [
        {"name": "router", "mode": "originate", "capture": "tproxy", "listen": "[::]:0"},
        {"name": "local", "mode": "originate", "capture": "redirect", "listen": "[::]:0"},
        {"name": "from-aws", "mode": "terminate", "transparent": True,
         "listen": "127.0.0.1:0", "proxy_protocol": "v2",
         "allow": [{"dns": "foo.internal",
                    "reach": ["10.20.0.5/32:5432", "10.20.0.6:80", "[fd20::7]:8080",
                              "10.30.0.0/16", "[fd30::/64]:1000-2000"]}]},
    ]
    return cfg


def route(cfg):
    return cfg["routes"][0]


def tunnel(i):
    return lambda cfg: cfg["tunnels"][i]


def reach_rule(cfg):
    return cfg["tunnels"][4]["allow"][0]


def setv(getter, key, value):
    def mutate(cfg):
        getter(cfg)[key] = value
        return cfg
    return mutate


def delv(getter, key):
    def mutate(cfg):
        del getter(cfg)[key]
        return cfg
    return mutate


def no_routes(cfg):
    del cfg["routes"]
    return cfg


CASES = {
    # $.routes
    "routes-missing-with-capture-tunnel": (no_routes, "$.routes",
                                           ["a capture tunnel needs at least one route"]),
    "routes-empty": (lambda c: {**c, "routes": []}, "$.routes",
                     ["expected a non-empty array of routes"]),
    "route-unknown-key": (setv(route, "via", "x"), "$.routes[0].via", ["unknown key"]),
    "route-to-missing": (delv(route, "to"), "$.routes[0].to", ["missing required key"]),
    "route-to-string": (setv(route, "to", "10.0.0.0/8"), "$.routes[0].to",
                        ["expected a non-empty array of prefixes"]),
    "route-to-host-bits": (setv(route, "to", ["10.20.0.1/16"]), "$.routes[0].to[0]",
                           ['"10.20.0.1/16"']),
    "route-to-prefix-too-long": (setv(route, "to", ["10.20.0.0/33"]), "$.routes[0].to[0]",
                                 ['"10.20.0.0/33"']),
    "route-to-name": (setv(route, "to", ["gcp.internal/16"]), "$.routes[0].to[0]",
                      ['"gcp.internal/16"']),
    "route-to-number": (setv(route, "to", [10]), "$.routes[0].to[0]", ["expected a string"]),
    "route-ports-zero": (setv(route, "ports", ["0"]), "$.routes[0].ports[0]", ['"0"']),
    "route-ports-reversed": (setv(route, "ports", ["90-80"]), "$.routes[0].ports[0]",
                             ['"90-80"']),
    "route-ports-too-big": (setv(route, "ports", ["70000"]), "$.routes[0].ports[0]",
                            ['"70000"']),
    "route-ports-empty": (setv(route, "ports", []), "$.routes[0].ports",
                          ["expected a non-empty array of ports"]),
    "route-peer-missing": (delv(route, "peer"), "$.routes[0].peer", ["missing required key"]),
    "route-peer-port-0": (setv(route, "peer", "127.0.0.1:0"), "$.routes[0].peer",
                          ["port must be 1..65535"]),
    "route-server-name-missing": (delv(route, "server_name"), "$.routes[0].server_name",
                                  ["missing required key"]),
    "route-allow-missing": (delv(route, "allow"), "$.routes[0].allow",
                            ["missing required key"]),
    "route-allow-with-reach": (setv(lambda c: c["routes"][0]["allow"][0], "reach",
                                    ["10.0.0.0/8"]),
                               "$.routes[0].allow[0].reach",
                               ['"reach" applies only to the allow rules of a "transparent"']),
    # $.capture
    "capture-unknown-key": (setv(lambda c: c["capture"], "table", 5), "$.capture.table",
                            ["unknown key"]),
    "capture-mark-zero": (setv(lambda c: c["capture"], "mark", 0), "$.capture.mark", []),
    "capture-mark-string": (setv(lambda c: c["capture"], "mark", "0x4647"), "$.capture.mark",
                            ["expected an integer"]),
    # the TPROXY rule's mark must not be the one on fedgate's own sockets
    "capture-tproxy-mark-equal": (setv(lambda c: c["capture"], "tproxy_mark", 17991),
                                  "$.capture.tproxy_mark",
                                  ["must differ from $.capture.mark", "17991"]),
    "capture-mark-equal-default-tproxy-mark": (setv(lambda c: c, "capture", {"mark": 17992}),
                                               "$.capture.tproxy_mark",
                                               ["must differ from $.capture.mark", "17992"]),
    "capture-tproxy-mark-zero": (setv(lambda c: c["capture"], "tproxy_mark", 0),
                                 "$.capture.tproxy_mark", ["must be between 1 and 2147483647"]),
    "capture-tproxy-mark-too-big": (setv(lambda c: c["capture"], "tproxy_mark", 0x80000000),
                                    "$.capture.tproxy_mark",
                                    ["must be between 1 and 2147483647"]),
    "capture-tproxy-mark-string": (setv(lambda c: c["capture"], "tproxy_mark", "0x4648"),
                                   "$.capture.tproxy_mark", ["expected an integer"]),
    "capture-route-table-main": (setv(lambda c: c["capture"], "route_table", 254),
                                 "$.capture.route_table", ["kernel's own tables"]),
    # capture tunnels
    "capture-unknown-kind": (setv(tunnel(2), "capture", "nat"), "$.tunnels[2].capture",
                             ['expected "tproxy" or "redirect"', '"nat"']),
    "capture-with-peer": (setv(tunnel(2), "peer", "127.0.0.1:8443"), "$.tunnels[2].peer",
                          ["does not apply to a capture tunnel", "$.routes"]),
    "capture-with-allow": (setv(tunnel(3), "allow", [{"dns": "x"}]), "$.tunnels[3].allow",
                           ["does not apply to a capture tunnel"]),
    "capture-on-terminate": (setv(tunnel(0), "capture", "tproxy"), "$.tunnels[0].capture",
                             ["applies to originate tunnels only"]),
    # transparent tunnels and reach
    "transparent-not-bool": (setv(tunnel(4), "transparent", "yes"),
                             "$.tunnels[4].transparent", ["expected true or false"]),
    "transparent-on-originate": (setv(tunnel(1), "transparent", True),
                                 "$.tunnels[1].transparent",
                                 ["applies to terminate tunnels only"]),
    "transparent-with-upstream": (setv(tunnel(4), "upstream", "127.0.0.1:9"),
                                  "$.tunnels[4].upstream",
                                  ["does not apply to a transparent tunnel"]),
    "reach-on-plain-terminate": (setv(lambda c: c["tunnels"][0]["allow"][0], "reach",
                                      ["10.0.0.0/8"]),
                                 "$.tunnels[0].allow[0].reach",
                                 ['"reach" applies only to the allow rules of a "transparent"']),
    "reach-string": (setv(reach_rule, "reach", "10.0.0.0/8"), "$.tunnels[4].allow[0].reach",
                     ["expected a non-empty array of destinations"]),
    "reach-empty": (setv(reach_rule, "reach", []), "$.tunnels[4].allow[0].reach",
                    ["expected a non-empty array of destinations"]),
    "reach-bad-prefix": (setv(reach_rule, "reach", ["10.20.0.5/40:80"]),
                         "$.tunnels[4].allow[0].reach[0]", ['"10.20.0.5/40:80"']),
    "reach-bad-port": (setv(reach_rule, "reach", ["10.20.0.5:0"]),
                       "$.tunnels[4].allow[0].reach[0]", ['"10.20.0.5:0"']),
    "reach-v6-without-brackets-and-port": (setv(reach_rule, "reach", ["fd20::7:8080:x"]),
                                           "$.tunnels[4].allow[0].reach[0]",
                                           ['"fd20::7:8080:x"']),
    "reach-number": (setv(reach_rule, "reach", [80]), "$.tunnels[4].allow[0].reach[0]",
                     ["expected a string"]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_transparent_config_is_refused(pki, tmp_path, case):
    mutate, jpath, problem = case
    cfg = mutate(copy.deepcopy(transparent_config(pki)))
    assert_refused(write_config(tmp_path, cfg), jpath, *problem)


def test_transparent_config_is_valid(pki, tmp_path):
    path = write_config(tmp_path, transparent_config(pki))
    r, left = run_fedgate(["check", "-c", str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{path}: OK: 5 tunnel(s), "), r.stdout
    assert not left


def test_capture_defaults_apply_without_a_capture_section(pki, tmp_path):
    cfg = transparent_config(pki)
    del cfg["capture"]
    r, _ = run_fedgate(["check", "-c", str(write_config(tmp_path, cfg))])
    assert r.returncode == 0, r.stderr


def test_routes_without_capture_tunnels_are_accepted(pki, tmp_path):
    """A route table may be written before the capture tunnel that uses it."""
    cfg = transparent_config(pki)
    del cfg["tunnels"][2:4]
    r, _ = run_fedgate(["check", "-c", str(write_config(tmp_path, cfg))])
    assert r.returncode == 0, r.stderr


def test_sighup_cannot_make_a_listener_transparent(pki, gateways, upstream):
    """A transparent (or capture) listener is set up when it is bound: a reload that turns a
    tunnel transparent is refused, and the running config keeps serving."""
    from conftest import gateway_config, recv_all
    up = upstream()
    plain = {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
             "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}
    gw = gateways("term", gateway_config(pki, "bar", [plain]))
    cfg = json.loads(gw.config_path.read_text())
    t = cfg["tunnels"][0]
    del t["upstream"]
    t["transparent"] = True
    t["allow"][0]["reach"] = ["10.20.0.0/16"]
    cfg["tunnels"][0] = t
    gw.config_path.write_text(json.dumps(cfg))
    gw.wait_log(r"worker\(s\) running")
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r"config not reloaded: .*\$\.tunnels\[0\]: capture or transparent changed "
                r"\(tunnel t\): listeners change only on restart")
    orig = gateways("orig", gateway_config(pki, "foo", [
        {"name": "o", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{gw.port('t')}", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal"}]}]))
    with socket.create_connection(("127.0.0.1", orig.port("o")), timeout=10) as s:
        s.sendall(b"still the old config\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"still the old config\n"
