"""Finding and killing every process an action started, on POSIX.

A process group is not enough: a child that calls ``setsid`` or double-forks leaves it.
Each action's processes therefore carry a tag in their environment (inherited by every
descendant that does not scrub its environment), and the tree is the union of the tag's
holders, the process group, and the live descendants of the top process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable

import psutil

__all__ = ["PROCESS_TAG_VARIABLE", "find_tagged", "kill_tree", "notify_tree", "signal_group"]

PROCESS_TAG_VARIABLE = "OPENJD_NOTEBOOK_PROCESS_TAG"
"""Environment variable that marks processes started by a session's actions."""

_KILL_ROUNDS = 20


def find_tagged(tag_prefix: str) -> set[psutil.Process]:
    """Live processes whose tag starts with ``tag_prefix`` (a session's or an action's)."""
    found: set[psutil.Process] = set()
    own_pid = os.getpid()
    for process in psutil.process_iter():
        if process.pid == own_pid:
            continue
        try:
            tag = process.environ().get(PROCESS_TAG_VARIABLE)
        except (psutil.Error, OSError):
            continue
        if tag is not None and tag.startswith(tag_prefix):
            found.add(process)
    return found


def _descendants(pid: int | None) -> set[psutil.Process]:
    if pid is None:
        return set()
    try:
        top = psutil.Process(pid)
        return {top, *top.children(recursive=True)}
    except psutil.Error:
        return set()


def _group_members(pgid: int | None) -> set[psutil.Process]:
    if pgid is None:
        return set()
    members: set[psutil.Process] = set()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                members.add(process)
        except (OSError, psutil.Error):
            continue
    return members


def tree_members(tag_prefix: str, top_pid: int | None, pgid: int | None) -> set[psutil.Process]:
    """Every live process that belongs to the tree, excluding zombies and this process."""
    members = find_tagged(tag_prefix) | _descendants(top_pid) | _group_members(pgid)
    own_pid = os.getpid()
    return {process for process in members if process.pid != own_pid and _is_alive(process)}


def signal_group(pgid: int, sig: int, sudo_user: str | None = None) -> None:
    """Send ``sig`` to a process group, through sudo when it belongs to another user."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        if sudo_user is not None:
            _sudo_kill(sudo_user, sig, [f"-{pgid}"])


def notify_tree(tag: str, top_pid: int, sig: int, sudo_user: str | None = None) -> None:
    """Send ``sig`` to every process group that holds a process of the tree.

    Same user, that includes the top process's group. Through sudo, sudo's own group is
    left out: the workload runs in a session of its own, and signalling sudo's login
    shell would end the action without the workload ever hearing of it.
    """
    groups: set[int] = set() if sudo_user else {top_pid}
    for process in find_tagged(tag):
        try:
            groups.add(os.getpgid(process.pid))
        except OSError:
            continue
    groups.discard(os.getpgid(0))  # never this process's own group
    if sudo_user:
        groups.discard(top_pid)
    for pgid in groups:
        signal_group(pgid, sig, sudo_user)


def _sudo_kill(user: str, sig: int, targets: Iterable[str]) -> None:
    name = signal.Signals(sig).name.removeprefix("SIG")
    subprocess.run(
        ["sudo", "-n", "-u", user, "kill", "-s", name, "--", *targets],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=10,
    )


def _kill_all(processes: set[psutil.Process], sudo_user: str | None) -> None:
    refused = []
    for process in processes:
        try:
            process.kill()
        except psutil.AccessDenied:
            refused.append(str(process.pid))
        except psutil.Error:
            continue
    if refused and sudo_user is not None:
        _sudo_kill(sudo_user, signal.SIGKILL, refused)


def _is_alive(process: psutil.Process) -> bool:
    try:
        status: str = process.status()
    except psutil.Error:
        return False
    return bool(status != psutil.STATUS_ZOMBIE)


def _await_death(processes: set[psutil.Process], until: float) -> None:
    # psutil.wait_procs would reap our own child and steal its exit code from Popen,
    # so watch for death (a zombie counts as dead) instead.
    pending = set(processes)
    while pending and time.monotonic() < until:
        pending = {process for process in pending if _is_alive(process)}
        if pending:
            time.sleep(0.005)


def kill_tree(
    tag_prefix: str,
    top_pid: int | None = None,
    pgid: int | None = None,
    sudo_user: str | None = None,
    deadline_s: float = 10.0,
) -> bool:
    """SIGKILL the whole tree until nothing of it is left; True when it is gone.

    Rounds repeat because a process may fork between the scan and the kill.
    """
    give_up_at = time.monotonic() + deadline_s
    for _ in range(_KILL_ROUNDS):
        members = tree_members(tag_prefix, top_pid, pgid)
        if not members:
            return True
        _kill_all(members, sudo_user)
        _await_death(members, min(time.monotonic() + 0.5, give_up_at))
        if time.monotonic() >= give_up_at:
            break
    return not tree_members(tag_prefix, top_pid, pgid)
