"""The named fields of an omsupdatemgmt.log entry, for :mod:`umlogs.parsers.update_worker`: the
package manager and its command, return code and output, the maintenance-window clock, and the
package a failure names.

A run logs the command, the return code and the output on separate entries, so the last command
seen is carried (in ``state``) to the entries after it until the next command: a return code knows
which package manager returned it.

>>> state = {}
>>> runbook_attrs("Package manager was invoked using: sudo yum -q check-update", [], state)
{'command': 'sudo yum -q check-update', 'package_manager': 'yum'}
>>> runbook_attrs("WARNING:- Return code from package manager: 100", [], state)
{'return_code': '100', 'command': 'sudo yum -q check-update', 'package_manager': 'yum'}
>>> runbook_attrs("Output from package manager:", ["|\\tLoaded plugins: langpacks |\\tbase: mirror"], state)["output"]
'Loaded plugins: langpacks\\nbase: mirror'
>>> runbook_attrs("Time Remaining: 00:00:00, Cutoff time: 2024-07-17 09:00:00 [Out of time!]", [], {})
{'time_remaining': '00:00:00', 'cutoff_time': '2024-07-17 09:00:00', 'out_of_time': 'true'}
"""

from __future__ import annotations

import re

from umlogs.parsers.grammar import terminal_regex

_GRAMMAR = "update_worker"

# Invoking package manager using: sudo apt-get -q update · Package manager was invoked using: …
_COMMAND = re.compile(r"(?:Invoking package manager using|Package manager was invoked using):\s*(.+?)\s*$")
# Return code from package manager: 100
_RETURN_CODE = re.compile(r"Return code from package manager:\s*(-?\d+)")
# Unexpected return code (100) from package manager on command: sudo apt-get -y upgrade
_UNEXPECTED = re.compile(r"Unexpected return code \((-?\d+)\) from package manager on command:\s*(.+?)\s*$")
# Time Remaining: 00:41:10, Cutoff time: 2019-06-03 03:50:00 [Out of time!]
_CLOCK = re.compile(r"Time Remaining:\s*([^,]+?),\s*Cutoff time:\s*(.+?)\s*(\[Out of time!?\])?\s*$")
# Package failed to install: openssl-libs · Package failed to install: curl (1.2.3)
_FAILED_PACKAGE = re.compile(r"Package failed to install:\s*(.+?)\s*$")
# The package manager a command runs: the first word after sudo and VAR=value settings.
_MANAGERS = {"apt-get": "apt", "apt": "apt", "apt-cache": "apt", "dpkg": "apt", "yum": "yum", "dnf": "dnf",
             "tdnf": "tdnf", "zypper": "zypper"}  # fmt: skip
_COMMAND_CARRIED_TO = ("return_code", "output")


def package_manager(command: str) -> str | None:
    """``apt``, ``yum``, ``dnf``, ``tdnf`` or ``zypper`` for a command line, else ``None``.

    >>> package_manager("sudo LANG=en_US.UTF8 /usr/bin/zypper --non-interactive refresh"), package_manager("ls")
    ('zypper', None)
    """
    for word in command.split():
        if word == "sudo" or word.startswith("-") or "=" in word:
            continue
        return _MANAGERS.get(word.rsplit("/", 1)[-1])
    return None


def output_segments(text: str) -> list[str]:
    """The ``|<tab>`` segments of one line, stripped (the grammar's OUTPUT_SEGMENT terminal).

    >>> output_segments("Output from package manager:  |\\tE: one |\\tE: two")
    ['E: one', 'E: two']
    """
    return [m.group(0)[2:].strip() for m in terminal_regex(_GRAMMAR, "OUTPUT_SEGMENT").finditer(text)]


def runbook_attrs(first: str, rest: list[str], state: dict[str, str]) -> dict[str, str]:
    """Named fields of one entry (first line ``first``, continuation lines ``rest``); updates ``state``."""
    attrs: dict[str, str] = {}
    for line in (first, *rest):
        command = _COMMAND.search(line)
        if command:
            attrs["command"] = command.group(1)
        unexpected = _UNEXPECTED.search(line)
        if unexpected:
            attrs["return_code"], attrs["command"] = unexpected.group(1), unexpected.group(2)
        code = _RETURN_CODE.search(line)
        if code:
            attrs["return_code"] = code.group(1)
        clock = _CLOCK.search(line)
        if clock:
            attrs["time_remaining"], attrs["cutoff_time"] = clock.group(1), clock.group(2)
            if clock.group(3):
                attrs["out_of_time"] = "true"
        failed = _FAILED_PACKAGE.search(line)
        if failed:
            attrs["package"] = failed.group(1)
    output = [segment for line in (first, *rest) for segment in output_segments(line)]
    if output:
        attrs["output"] = "\n".join(output)
    if "command" in attrs:
        state.clear()
        state["command"] = attrs["command"]
        manager = package_manager(attrs["command"])
        if manager:
            state["package_manager"] = manager
    elif state and any(key in attrs for key in _COMMAND_CARRIED_TO):
        attrs["command"] = state["command"]
    if "command" in attrs and "package_manager" in state:
        attrs["package_manager"] = state["package_manager"]
    return attrs
