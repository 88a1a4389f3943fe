"""portal_exception: sniffing, every error block of the seed, variants, samples, depth and size, properties."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from umlogs import parsers
from umlogs.parsers import portal_exception as pe
from umlogs.parsers.event import Event
from umlogs.pipeline.parse import FileResult, parse_bytes

from conftest import SAMPLES, shared_path


def seed_blocks() -> list[str]:
    text = shared_path("seed", "update-management-troubleshooting.md").read_text(encoding="utf-8")
    return re.findall(r"```error\n(.*?)\n```", text, re.S)


def one(text: str) -> Event:
    events = list(pe.parse(text.splitlines(), "t"))
    assert len(events) == 1, events
    return events[0]


def attrs(event: Event) -> dict[str, str]:
    return dict(event.attrs)


# --- sniff --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        ["Error details: Unable to register Automation Resource Provider for subscriptions:"],
        ["", "System.Net.WebException: The remote name could not be resolved: 'x.azure-automation.net'"],
        ['{"error":{"code":"Conflict","message":"Another operation is in progress."}}'],
        ["Traceback (most recent call last):", '  File "/x.py", line 1, in <module>', "ValueError: bad"],
        ["Data collection stopped due to daily limit of free data reached. Ingestion status = OverQuota"],
    ],
)
def test_sniff_accepts_error_text(head):
    assert pe.sniff(head)


@pytest.mark.parametrize(
    "head",
    [
        ["2018-10-02\t11:21:58:874\t 408\t1224\tPT\tWARNING: PTError: 0x80072ee2"],
        ["2023/05/22 08:10:31.7433169 2944  3952  Handler         * START *   CBS  Install"],
        ["2019-05-31 10:11:12 (8593)worker : Exception: boom", "2019-05-31 10:11:13 (8593)worker : done"],
        ["Debug: Machine Information:   Static hostname: vm1", "Passed: Operating system version is supported"],
        ['[{"RuleId": "Linux.ProxyCheck", "CheckResult": "Passed"}]'],
        ["\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00"],
        ["hello world"],
        [],
    ],
)
def test_sniff_rejects_logs_and_junk(head):
    assert not pe.sniff(head)


def test_registry_order_and_detection():
    assert [p.NAME for p in parsers.PARSERS][-1] == "portal_exception"
    assert parsers.detect(["System.InvalidOperationException: {\"Message\":\"x\"}"]) is pe
    assert parsers.detect(["2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus"]).NAME == "windows_update"


# --- the seed's error blocks -----------------------------------------------------------------


def test_seed_has_nine_error_blocks():
    assert len(seed_blocks()) == 9


def test_every_seed_block_is_one_error_event():
    for block in seed_blocks():
        event = one(block)
        assert event.level == "error" and event.raw == block and event.line_no == 1
        assert event.message and "parse_error" not in attrs(event)


def test_seed_tls_chain():
    block = next(b for b in seed_blocks() if "common algorithm" in b)
    event = one(block)
    assert [t for t, _ in event.exception_chain] == [
        "System.Net.Http.HttpRequestException", "System.Net.WebException", "System.ComponentModel.Win32Exception",
    ]  # fmt: skip
    assert event.exception_chain[0][1] == "An error occurred while sending the request."
    assert event.exception_chain[1][1] == "The underlying connection was closed: An unexpected error occurred on a receive."
    assert attrs(event)["prefix"] == "register"
    assert attrs(event)["outer_type"] == "System.Net.Http.HttpRequestException"
    assert attrs(event)["inner_type"] == "System.ComponentModel.Win32Exception"


def test_seed_already_registered_json():
    event = one(next(b for b in seed_blocks() if "already registered" in b))
    assert event.exception_chain[0][0] == "System.InvalidOperationException"
    assert attrs(event)["json.Message"] == "Machine is already registered to a different account."


def test_seed_selfsigned_type_with_pasted_space():
    event = one(next(b for b in seed_blocks() if "self-signed" in b))
    assert event.exception_chain == (
        ("AgentService.HybridRegistration.PowerShell.Certificates.CertificateCreationException",
         "Failed to create a self-signed certificate."),
        ("System.UnauthorizedAccessException", "Access is denied."),
    )  # fmt: skip


def test_seed_multi_tenant_ids():
    a = attrs(one(next(b for b in seed_blocks() if "linked subscription" in b)))
    zero = "00000000-0000-0000-0000-000000000000"
    assert a["action"] == "Microsoft.Compute/virtualMachines/write"
    assert a["subscription_id"] == a["tenant_id"] == a["linked_subscription_id"] == zero
    assert a["resource_group"] == "resourceGroupName" and a["automation_account"] == "automationAccountName"
    assert a["scope"].startswith(f"/subscriptions/{zero}/") and a["scope"].endswith("/updateDeploymentName")


def test_seed_runbook_and_host():
    assert attrs(one(next(b for b in seed_blocks() if "RunbookName" in b)))["runbook"] == "Patch-MicrosoftOMSComputer"
    a = attrs(one(next(b for b in seed_blocks() if "certificate presented" in b)))
    assert a["hosts"] == "<wsid>.oms.opinsights.azure.com" and a["workspace_id"] == "<wsid>"
    assert "<wsid>" in a["redacted"]


def test_seed_positive_infinity():
    event = one(next(b for b in seed_blocks() if "infinity" in b))
    assert event.exception_chain == (("Newtonsoft.Json.JsonReaderException", "Error parsing positive infinity value."),)


# --- variants ------------------------------------------------------------------------------------


def test_variant_wrapped_with_other_ids_and_curly_quotes():
    sub, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    text = (
        f"The client has permission to perform action ‘Microsoft.Compute/virtualMachines/write’ on scope\n"
        f"‘/subscriptions/{sub}/resourceGroups/RG-Ops/providers/Microsoft.Automation/automationAccounts/AA-Ops/"
        f"softwareUpdateConfigurations/weekly’, however the current tenant ‘{tenant[:9]}\n{tenant[9:]}’ is not\n"
        "authorized to access linked subscription ‘xxxx’"
    )
    a = attrs(one(text))
    assert (a["subscription_id"], a["tenant_id"], a["linked_subscription_id"]) == (sub, tenant, "xxxx")
    assert a["resource_group"] == "RG-Ops" and a["automation_account"] == "AA-Ops"


def test_variant_inner_exception_and_hresult_name():
    event = one(
        "AgentService.HybridRegistration.PowerShell.Certificates.CertificateCreationException: Failed to create a "
        "self-signed certificate. ---> System.Security.Cryptography.CryptographicException: Access is denied. "
        "(Exception from HRESULT: 0x80070005 (E_ACCESSDENIED)) ---> System.UnauthorizedAccessException: "
        "Access is denied. (Access is denied.)"
    )
    assert len(event.exception_chain) == 3
    assert event.exception_chain[-1] == ("System.UnauthorizedAccessException", "Access is denied.")
    assert event.hresults == ("0x80070005",) and attrs(event)["hresult_name"] == "E_ACCESSDENIED"


@pytest.mark.parametrize(
    ("text", "code", "name"),
    [
        ("The service cannot be started. (Exception from HRESULT: 0x80070422)", "0x80070422", None),
        ("Server execution failed (0x80080005 (CO_E_SERVER_EXEC_FAILURE)).", "0x80080005", "CO_E_SERVER_EXEC_FAILURE"),
        ("Scan failed with HRESULT 0x8024402C", "0x8024402C", None),
        ("WU_E_PT_HTTP_STATUS_FORBIDDEN (0x80244018) while scanning", "0x80244018", "WU_E_PT_HTTP_STATUS_FORBIDDEN"),
        ("Exception calling Search. HResult : -2145124322", "0x8024001E", None),
        ("System.Runtime.InteropServices.COMException (0x8024402F): Failure", "0x8024402F", None),
    ],
)
def test_hresult_forms(text, code, name):
    event = one(text)
    assert event.hresults == (code,)
    assert attrs(event).get("hresult_name") == name


def test_arm_json_nested_in_json_string():
    inner = '{\\"error\\":{\\"code\\":\\"Conflict\\",\\"message\\":\\"Line one.\\\\r\\\\nLine two.\\"}}'
    event = one('Error details: {"Message":"' + inner + '"}')
    a = attrs(event)
    assert a["json.Message.error.code"] == "Conflict"
    assert a["json.Message.error.message"] == "Line one.\r\nLine two."


def test_powershell_record():
    event = one(
        "New-AzAutomationSchedule : The Automation account was not found.\n"
        "At line:1 char:1\n"
        "+ New-AzAutomationSchedule -ResourceGroupName rg-x ...\n"
        "+ ~~~~~~~~~~~~~~~~~~~~~~~~\n"
        "    + CategoryInfo          : CloseError: (:) [New-AzAutomationSchedule], ResourceNotFoundException\n"
        "    + FullyQualifiedErrorId : Microsoft.Azure.Commands.Automation.Cmdlet.NewAzureAutomationSchedule"
    )
    a = attrs(event)
    assert event.exception_chain == (("ResourceNotFoundException", "The Automation account was not found."),)
    assert a["cmdlet"] == "New-AzAutomationSchedule" and a["position"] == "At line:1 char:1"
    assert a["category_info"].endswith("ResourceNotFoundException")
    assert a["fully_qualified_error_id"] == "Microsoft.Azure.Commands.Automation.Cmdlet.NewAzureAutomationSchedule"
    assert "~~~" not in event.message


def test_python_traceback_chain_outermost_first():
    event = one(
        "Traceback (most recent call last):\n"
        '  File "/opt/worker/a.py", line 3, in run\n'
        "    connect()\n"
        "ConnectionRefusedError: [Errno 111] Connection refused\n"
        "\n"
    )
    assert event.exception_chain == (("ConnectionRefusedError", "[Errno 111] Connection refused"),)
    event = next(pe.parse([
        "Traceback (most recent call last):", '  File "a.py", line 1, in f', "KeyError: 'x'",
        "During handling of the above exception, another exception occurred:",
        "Traceback (most recent call last):", '  File "a.py", line 4, in g', "RuntimeError: wrapped",
    ], "t"))  # fmt: skip
    assert [t for t, _ in event.exception_chain] == ["RuntimeError", "KeyError"]


def test_stack_frames_and_end_markers_leave_the_message():
    event = one(
        "System.Net.WebException: closed\n"
        " ---> System.IO.IOException: reset\n"
        "   at System.Net.Sockets.NetworkStream.Read(Byte[] buffer, Int32 offset) in C:\\src\\Net.cs:line 12\n"
        "   --- End of inner exception stack trace ---\n"
        "   at System.Net.HttpWebRequest.GetResponse()"
    )
    assert event.exception_chain == (("System.Net.WebException", "closed"), ("System.IO.IOException", "reset"))
    assert attrs(event)["stack_frames"] == "2" and "NetworkStream" not in event.message


def test_unrecognised_text_is_still_an_event():
    event = one("Something odd happened")
    assert event.message == "Something odd happened" and event.exception_chain == ()


def test_timestamp_only_when_carried():
    assert one("System.Exception: x").timestamp is None
    event = one("2024-03-05T07:08:09Z System.Exception: x")
    assert event.timestamp.isoformat() == "2024-03-05T07:08:09" and event.utc_offset == 0


def test_blank_lines_and_one_per_line():
    lines = ["A.BException: one.", "C.DException: two.", "", "E.FException: three", "   at X.Y()", "", "", "last"]
    events = list(pe.parse(lines, "t"))
    assert [(e.line_no, e.line_count) for e in events] == [(1, 1), (2, 1), (4, 2), (8, 1)]


# --- samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((SAMPLES / "portal_exception").glob("*.txt")), ids=lambda p: p.name)
def test_samples_parse_without_issues(path: Path):
    result = parse_bytes(path.read_bytes(), FileResult(source=str(path)))
    assert result.format == "portal_exception" and result.issues == [] and result.accounted
    assert all(e.level == "error" for e in result.events)


def test_mixed_sample_counts():
    result = parse_bytes((SAMPLES / "portal_exception" / "mixed.txt").read_bytes(), FileResult(source="m"))
    assert len(result.events) == 8
    assert result.events[5].exception_chain[-1][1].endswith("do not possess a common algorithm")


# --- depth and size ----------------------------------------------------------------------------


def test_thousand_level_chain():
    text = " ---> ".join(f"Ns.Level{i}Exception: message {i}" for i in range(1000))
    event = one(text)
    assert len(event.exception_chain) == 1000
    assert event.exception_chain[999] == ("Ns.Level999Exception", "message 999")
    wrapped = "\n ---> ".join(f"Ns.L{i}Exception: m" for i in range(1000))
    assert len(one(wrapped).exception_chain) == 1000


def test_one_megabyte_string():
    body = "Resource /subscriptions/abc/resourceGroups/rg failed 0x80070005 {\"a\": 1} at word. " * 13000
    event = one("System.InvalidOperationException: " + body)
    assert len(event.raw) > 1_000_000
    assert event.exception_chain[0][0] == "System.InvalidOperationException"
    assert event.hresults == ("0x80070005",) and attrs(event)["resource_group"] == "rg"


# --- properties ---------------------------------------------------------------------------------

_ident = st.from_regex(r"[A-Z][a-z]{1,8}", fullmatch=True)
_types = st.builds(lambda ns, name: f"{ns}.{name}Exception", st.lists(_ident, min_size=1, max_size=3).map(".".join), _ident)
_messages = st.from_regex(r"[A-Za-z][a-z]{0,8}( [a-z]{1,8}){0,6}\.", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_types, _messages), min_size=1, max_size=6), st.uuids(), st.uuids(), st.booleans())
def test_generated_strings_round_trip(chain, sub, tenant, wrap):
    text = " ---> ".join(f"{t}: {m}" for t, m in chain)
    text += f" Scope '/subscriptions/{sub}/resourceGroups/rg1' in tenant '{tenant}'."
    if wrap:
        text = text.replace(" ---> ", "\n ---> ")
    event = one(text)
    assert [t for t, _ in event.exception_chain] == [t for t, _ in chain]
    assert [m for _, m in event.exception_chain[:-1]] == [m for _, m in chain[:-1]]
    a = attrs(event)
    assert a["subscription_id"] == str(sub) and a["tenant_id"] == str(tenant) and a["resource_group"] == "rg1"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=12))
def test_arbitrary_text_never_raises_and_lines_are_accounted(lines):
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    pe.sniff(lines)
    items = list(pe.parse(lines, "t"))
    blank = sum(1 for line in lines if not line.strip())
    assert sum(i.line_count for i in items) + blank == len(lines)
    assert all(isinstance(i, Event) and i.message for i in items)
