"""explain_text: every error string of the seed, and variants of it, lead to the seed's scenario."""

from __future__ import annotations

import re

import pytest

from conftest import shared_path
from umlogs.pipeline.explain_text import as_text, explain_text

# The scenario each seed error block belongs to, recognised by a phrase of the block.
SEED_SCENARIOS = {
    "Automation Resource Provider": "rp-register",
    "have been enabled": "components-enabled-not-working",
    "linked subscription": "multi-tenant",
    "hybrid worker group that does not exist": "failed-to-start",
    "already registered": "machine-already-registered",
    "common algorithm": "machine-unable-to-communicate",
    "positive infinity": "machine-unable-to-communicate",
    "not issued by a certificate authority": "machine-unable-to-communicate",
    "self-signed": "unable-to-create-selfsigned-cert",
}

VARIANTS = [
    ("unable to register the automation resource provider for subscriptions: 0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8",
     "rp-register"),
    ("The components for the “Update Management” solution have been enabled, and now this virtual machine\n"
     "is being configured", "components-enabled-not-working"),
    ("New-AzAutomationSoftwareUpdateConfiguration : {\"error\":{\"code\":\"LinkedAuthorizationFailed\",\"message\":"
     "\"The client has permission to perform action 'Microsoft.Compute/virtualMachines/write' on scope "
     "'/subscriptions/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d/resourceGroups/rg'.\"}}", "multi-tenant"),
    ("EXCEPTION: YOU HAVE REQUESTED TO CREATE A RUNBOOK JOB ON A HYBRID WORKER GROUP THAT DOES NOT EXIST", "failed-to-start"),
    ("System.AggregateException: One or more errors occurred. ---> System.InvalidOperationException: "
     "{\\\"Message\\\":\\\"Machine is already registered to a different account\\\"}", "machine-already-registered"),
    ("System.Net.WebException: The request was aborted ---> System.ComponentModel.Win32Exception (0x80090331): "
     "The client and server cannot communicate, because they do not possess a common\nalgorithm",
     "machine-unable-to-communicate"),
    ("newtonsoft.json.jsonreaderexception: error parsing positive infinity value. Path '', line 1",
     "machine-unable-to-communicate"),
    ("The certificate presented by the service 9c8b7a69-5d4e-4f3a-b2c1-d0e9f8a7b6c5.oms.opinsights.azure.com "
     "was not issued by a certificate authority used for Microsoft services", "machine-unable-to-communicate"),
    ("AgentService.HybridRegistration.PowerShell.Certificates.CertificateCreationException: Failed to create a self "
     "signed certificate. ---> System.Security.Cryptography.CryptographicException: Keyset does not exist",
     "unable-to-create-selfsigned-cert"),
    ('Install failed: {"error":{"code":"MaintenanceWindowExceeded","message":"Time is up."}}', "mw-exceeded"),
    ("Data collection stopped due to daily limit of free data reached. Ingestion status = OverQuota", "nologs"),
    ("The service cannot be started, either because it is disabled or because it has no enabled devices associated "
     "with it. (Exception from HRESULT: 0x80070422)", "hresult"),
    ("System.Runtime.InteropServices.COMException (0x8024402C): Exception from HRESULT: 0x8024402C", "hresult"),
]  # fmt: skip


def seed_blocks() -> list[str]:
    text = shared_path("seed", "update-management-troubleshooting.md").read_text(encoding="utf-8")
    return re.findall(r"```error\n(.*?)\n```", text, re.S)


def scenarios(result: dict) -> set[str]:
    return {f["scenario"] for f in result["findings"]}


def test_every_seed_block_gets_its_scenario():
    blocks = seed_blocks()
    assert len(blocks) == len(SEED_SCENARIOS)
    for block in blocks:
        expected = next(s for phrase, s in SEED_SCENARIOS.items() if phrase in block)
        assert expected in scenarios(explain_text(block)), block


@pytest.mark.parametrize(("text", "scenario"), VARIANTS, ids=[s for _, s in VARIANTS])
def test_variants_get_the_same_scenario(text, scenario):
    assert scenario in scenarios(explain_text(text))


def test_structure_of_an_event():
    result = explain_text(
        "Unable to Register Machine for Patch Management, Registration Failed with Exception "
        "System.Security.Cryptography.CryptographicException: Access is denied. "
        "(Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
    )
    (event,) = result["events"]
    assert event["chain"][0]["type"] == "System.Security.Cryptography.CryptographicException"
    assert event["prefix"] == "register"
    (code,) = event["codes"]
    assert code["code"] == "0x80070005" and code["name"] == "E_ACCESSDENIED" and code["meaning"]


def test_no_rule_matched_is_said_plainly():
    result = explain_text("Something odd happened and nobody knows why.")
    assert result["findings"] == [] and len(result["events"]) == 1
    assert "No rule matched" in as_text(result)


def test_several_strings_in_one_text():
    text = "Ingestion status = OverQuota\n\nThe scheduled update failed with a MaintenanceWindowExceeded error."
    result = explain_text(text)
    assert len(result["events"]) == 2 and {"nologs", "mw-exceeded"} <= scenarios(result)
