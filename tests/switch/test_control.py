# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-switch's control socket (hvd's way in) end to end in a window: focus moves the
picture and the keys, thumbnails carry the producer's pixels, list, bad requests, and
producers cannot use it.

Run with Debian's Python: /usr/bin/python3 -m pytest tests/switch/test_control.py
"""

import os
import re
import socket
import stat
import struct
import time

import pytest

import switchctl
from switchctl import SwitchCtl
from switchenv import wait_for
from test_switch import BLUE, BLUE_HEX, GUEST, KEY_A, KEY_B, KEY_X, RED, RED_HEX, env, shows  # noqa: F401

GREEN, GREEN_HEX = (0x20, 0xC0, 0x20), "20c020"


@pytest.fixture
def three(env):
    a = env.vm("red", RED_HEX, "--size", "1280x800")
    env.wait_screen(shows(RED), "red on the screen")
    b = env.vm("blue", BLUE_HEX, "--size", "1024x768")
    c = env.vm("green", GREEN_HEX, "--slot", "7", "--size", "640x400")
    for p, slot in ((a, 1), (b, 2), (c, 7)):
        p.wait_line(lambda l, s=slot: l == f"welcome slot {s}", what="its slot")
    ctl = SwitchCtl(env.control)
    yield env, ctl, a, b, c
    ctl.close()


def close_to(rgb, colour, tol=12):
    return all(abs(p - q) <= tol for p, q in zip(rgb, colour))


def share_of(rgb, colour, tol=12):
    n = len(rgb) // 3
    return sum(close_to(rgb[i * 3:i * 3 + 3], colour, tol) for i in range(n)) / n


def test_socket_is_private(env):
    st = os.stat(env.control)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_focus_moves_picture_and_keys(three):
    env, ctl, a, b, c = three
    env.type("a")
    a.wait_line(lambda l: l == f"key {KEY_A} release", what="a")

    assert ctl.focus(2) == (2, "blue")
    s = env.wait_screen(shows(BLUE), "blue after focus 2 on the control socket")
    assert s.count(RED, GUEST) == 0
    b.wait_line(lambda l: l == "focus 1", what="its focus")
    a.wait_line(lambda l: l == "focus 0", what="losing the focus")
    env.type("x")
    b.wait_line(lambda l: l == f"key {KEY_X} release", what="x")

    assert ctl.focus(7) == (7, "green")
    env.wait_screen(shows(GREEN, 0.2), "green after focus 7")
    env.type("b")
    c.wait_line(lambda l: l == f"key {KEY_B} release", what="b")
    time.sleep(0.3)
    assert KEY_X not in a.keys() and KEY_B not in a.keys() + b.keys()
    assert KEY_A not in b.keys() + c.keys()

    with pytest.raises(switchctl.CtlError) as e:
        ctl.focus(5)
    assert e.value.status == switchctl.E_NO_VM and "slot 5" in e.value.message
    env.wait_screen(shows(GREEN, 0.2), "green still after a focus of an empty slot")


def test_focus_closes_the_overlay(three):
    env, ctl, a, b, c = three
    env.key("ctrl+alt+Tab")
    env.wait_screen(lambda s: s.count(BLUE, GUEST) > 20000 and s.count(RED, GUEST) > 20000,
                    "the overlay")
    ctl.focus(2)
    env.wait_screen(lambda s: shows(BLUE)(s) and s.count(RED, GUEST) == 0,
                    "blue alone after focus from the control socket")
    env.type("x")
    b.wait_line(lambda l: l == f"key {KEY_X} release", what="x: the overlay is closed")


def test_list(three):
    env, ctl, a, b, c = three
    vms = ctl.list()
    assert [(v["slot"], v["name"]) for v in vms] == [(1, "red"), (2, "blue"), (7, "green")]
    assert [v["focused"] for v in vms] == [True, False, False]
    assert vms[0]["colour"] == 0xCC2020 and vms[1]["width"] == 1024 and vms[1]["height"] == 768
    assert all(v["picture"] for v in vms)
    ctl.focus(7)
    assert [v["focused"] for v in ctl.list()] == [False, False, True]


def test_thumbnails_carry_the_producers_pixels(three):
    env, ctl, a, b, c = three
    t0 = time.monotonic()
    w, h, name, rgb = ctl.thumb(1, 320, 200)
    took = time.monotonic() - t0
    assert (w, h, name) == (320, 200, "red")
    assert share_of(rgb, RED) > 0.8, "the thumbnail of red is red (but its white name)"
    assert share_of(rgb, BLUE) == 0
    w, h, name, rgb = ctl.thumb(2, 320, 200)
    assert (w, h, name) == (266, 200, "blue"), "4:3 fitted into 320x200"
    assert share_of(rgb, BLUE) > 0.8 and share_of(rgb, RED) == 0
    w, h, name, rgb = ctl.thumb(7, 2048, 2048)
    assert (w, h, name) == (640, 400, "green"), "never enlarged"
    assert share_of(rgb, GREEN) > 0.8
    # Thumbnails are of any VM, focused or not, and do not move the focus.
    env.wait_screen(shows(RED), "red still focused")
    print(f"320x200 thumbnail of a 1280x800 picture: {took * 1000:.1f} ms round trip")


def test_thumbnail_follows_damage(env):
    a = env.vm("red", RED_HEX, "--animate", "100")
    a.wait_line(lambda l: l.startswith("welcome"), what="welcome")
    ctl = SwitchCtl(env.control)
    wait_for(lambda: ctl.list() and ctl.list()[0]["picture"], 10, "a picture")
    _, _, _, one = ctl.thumb(1, 1280, 800)
    # The frame counter in the corner changes: the thumbnail is live, not a copy at connect.
    wait_for(lambda: ctl.thumb(1, 1280, 800)[3] != one, 10, "a different thumbnail")
    ctl.close()


def test_errors(env):
    ghost = env.vm("ghost", "808080", "--no-frame")
    ghost.wait_line(lambda l: l.startswith("welcome"), what="welcome")
    ctl = SwitchCtl(env.control)
    with pytest.raises(switchctl.CtlError) as e:
        ctl.thumb(1, 64, 64)
    assert e.value.status == switchctl.E_NO_PICTURE and "ghost" in e.value.message
    with pytest.raises(switchctl.CtlError) as e:
        ctl.thumb(3, 64, 64)
    assert e.value.status == switchctl.E_NO_VM
    bad = [b"", b"\x41", struct.pack("=II", 0x41, 10), struct.pack("=III", 0x41, 1, 0),
           struct.pack("=IIII", 0x43, 1, 0, 64), struct.pack("=IIII", 0x43, 1, 64, 4096),
           struct.pack("=I", 0x01), struct.pack("=I", 0xC1), b"\xff" * 3000, os.urandom(40)]
    for data in bad:
        kind, msg, fds = ctl.raw(data) if data else ctl.raw(b"\0\0")
        assert kind == switchctl.ERROR and not fds, data[:16]
        status = struct.unpack_from("=I", msg, 4)[0]
        assert status == switchctl.E_BAD_REQUEST
    # A request with a descriptor attached.
    r, w = os.pipe()
    socket.send_fds(ctl.sock, [struct.pack("=I", 0x42)], [r])
    os.close(r)
    os.close(w)
    msg = ctl.sock.recv(4096)
    assert struct.unpack_from("=II", msg) == (switchctl.ERROR, switchctl.E_BAD_REQUEST)
    # The connection and hv-switch carry on.
    assert [v["name"] for v in ctl.list()] == ["ghost"]
    ctl.close()


def test_a_client_that_does_not_read_is_closed(env):
    a = env.vm("red", RED_HEX)
    a.wait_line(lambda l: l.startswith("welcome"), what="welcome")
    ctl = SwitchCtl(env.control)
    ctl.sock.setblocking(False)
    sent = 0
    try:
        for _ in range(20000):
            ctl.sock.send(struct.pack("=I", switchctl.LIST))
            sent += 1
    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
        pass
    wait_for(lambda: "does not take its reply" in env.log(), 10, "hv-switch to give up on it")
    ctl.close()
    other = SwitchCtl(env.control)
    assert [v["name"] for v in other.list()] == ["red"]
    other.close()
    env.wait_screen(shows(RED), "red still on the screen")


@pytest.mark.parametrize("kind", ["control-focus", "control-thumb"])
def test_producer_cannot_send_control_requests(three, kind):
    env, ctl, a, b, c = three
    evil = env.vm("evil", "00ff00", "--hostile", kind)
    wait_for(lambda: evil.proc.poll() is not None, 10, "hv-switch to close the producer")
    assert "closed by hv-switch" in evil.lines()
    assert not any(l.startswith("unknown message") for l in evil.lines()), "it got a reply"
    assert re.search(r"error: vm 'evil' refused: .*; closing it", env.log())
    time.sleep(0.3)
    env.wait_screen(shows(RED), "red still focused")
    assert [v["focused"] for v in ctl.list()] == [True, False, False]
