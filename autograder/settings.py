"""Every ``DLGRADE_*`` environment variable (and Kubernetes's ``JOB_COMPLETION_INDEX``), read in one place; the
README's table lists them."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SALT = "dlgrade"


class SettingError(ValueError):
    """An environment variable has a value dlgrade cannot use (the message names the variable)."""


@dataclass(frozen=True)
class Settings:
    """What the environment asks of dlgrade."""

    home: Path | None  # DLGRADE_HOME: the course folder for commands given none (default: found from the cwd)
    seed_salt: str  # DLGRADE_SEED_SALT: makes the hidden seeds of a course its own
    devices: tuple[str, ...] | None  # DLGRADE_DEVICES: restrict torch checks to these devices (e.g. "cpu")
    uid_base: int  # DLGRADE_UID_BASE: worker i runs student code as uid base + i (as root)
    no_bwrap: bool  # DLGRADE_NO_BWRAP=1: do not use bubblewrap (to test the fallback)
    no_cgroup: bool  # DLGRADE_NO_CGROUP=1: do not make cgroups
    no_seccomp: bool  # DLGRADE_NO_SECCOMP=1: do not install the syscall filter (to test the second layer)
    cgroup: Path | None  # DLGRADE_CGROUP: a cgroup v2 folder delegated to the grader, to create workers under
    cache: Path | None  # DLGRADE_CACHE: folder of the reference's cached outputs (default ~/.cache/dlgrade)
    shards: str  # DLGRADE_SHARDS: the number of shards when JOB_COMPLETION_INDEX gives the index (Kubernetes)
    job_completion_index: str  # JOB_COMPLETION_INDEX: set by a Kubernetes Indexed Job (0-based)
    debug: bool  # DLGRADE_DEBUG=1: let the sandbox's stderr through
    require_sandbox: bool  # DLGRADE_REQUIRE_SANDBOX=1: a security test whose protection is missing fails


def _flag(env: dict, name: str) -> bool:
    return env.get(name, "").strip() not in ("", "0", "false", "no")


def _int(env: dict, name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{name}={text!r} is not a whole number") from None


def from_environment(env: dict | None = None) -> Settings:
    """Settings from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    devices = env.get("DLGRADE_DEVICES", "").strip()
    uid_base = _int(env, "DLGRADE_UID_BASE", 61000)
    if not 1000 <= uid_base < 2**31 - 1024:
        raise SettingError(f"DLGRADE_UID_BASE={uid_base} must be at least 1000 (a range no login user has)")
    return Settings(
        home=Path(env["DLGRADE_HOME"]) if env.get("DLGRADE_HOME") else None,
        seed_salt=env.get("DLGRADE_SEED_SALT") or DEFAULT_SALT,
        devices=tuple(d.strip() for d in devices.split(",") if d.strip()) if devices else None,
        uid_base=uid_base,
        no_bwrap=_flag(env, "DLGRADE_NO_BWRAP"),
        no_cgroup=_flag(env, "DLGRADE_NO_CGROUP"),
        no_seccomp=_flag(env, "DLGRADE_NO_SECCOMP"),
        cgroup=Path(env["DLGRADE_CGROUP"]) if env.get("DLGRADE_CGROUP") else None,
        cache=Path(env["DLGRADE_CACHE"]) if env.get("DLGRADE_CACHE") else None,
        shards=env.get("DLGRADE_SHARDS", "").strip(),
        job_completion_index=env.get("JOB_COMPLETION_INDEX", "").strip(),
        debug=_flag(env, "DLGRADE_DEBUG"),
        require_sandbox=_flag(env, "DLGRADE_REQUIRE_SANDBOX"),
    )


@functools.lru_cache(maxsize=1)
def current() -> Settings:
    """The settings of this process, read once (tests that change the environment call ``current.cache_clear``)."""
    return from_environment()
