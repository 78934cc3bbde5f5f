"""LSL test setup: keep every stream on this machine, unique stream names.

Import this module before any other LSL call (the config is read at liblsl's first use).
"""

from __future__ import annotations

import time
import uuid

import pylsl

from ecgaffect.stream._lsl import set_extra_config

# Through ecgaffect (not pylsl.set_config_content), so that `ecgaffect` main setting the
# log level keeps this setting.
set_extra_config("[multicast]\nResolveScope = machine\n")

#: Resolve timeouts in tests stay short so the suite stays fast.
RESOLVE_S = 2.0


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def resolve_one(name: str, timeout_s: float = RESOLVE_S) -> pylsl.StreamInfo:
    infos = pylsl.resolve_byprop("name", name, minimum=1, timeout=timeout_s)
    assert infos, f"LSL stream {name!r} not found within {timeout_s} s"
    return infos[0]


def wait_until(pred, timeout_s: float = 3.0, poll_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll_s)
    return bool(pred())
