"""Tests for umlogs.pipeline.hresult: the shipped catalog against the reference lists in ../shared, and
the decoder against hand-checked HRESULT bit layouts."""

from __future__ import annotations

import csv
import difflib
import doctest
import re
from importlib import resources

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import shared_path
from umlogs.pipeline import hresult
from umlogs.pipeline.hresult import (
    CATALOG_SCHEMA, HResultError, catalog_table, decode, explain, is_failure, lookup, normalize,
)
from umlogs.pipeline.rules import SCENARIOS

# Codes the guide and real logs care about: each must say what causes it and what to do.
EXPLAINED = """0x8024402C 0x8024401C 0x8024402F 0x8024001E 0x8024002E 0x80072EE2 0x80070422 0x80070005 0x80244022
0x80244018 0x8024401B 0x80244019 0x80244017 0x80240438 0x8024500C 0x80248007 0x80240022 0x80070643 0x800F081F
0x80080005 0x80072EFD 0x80072EFE 0x80072F8F 0x80072EE7 0x8024200D 0x80242016 0x80246008 0x80070002 0x8007000E
0x80240020 0x8024000B 0x80244010 0x8024A000 0x80190193 0x80190197 0x800705B4 0x8007045B""".split()

# Common non-Windows-Update codes and the names the catalog must give them.
COMMON = {
    "0x80070005": "E_ACCESSDENIED", "0x80070422": "ERROR_SERVICE_DISABLED", "0x80072EE2": "ERROR_INTERNET_TIMEOUT",
    "0x80072EFD": "ERROR_INTERNET_CANNOT_CONNECT", "0x80072EFE": "ERROR_INTERNET_CONNECTION_ABORTED",
    "0x80072F8F": "ERROR_WINHTTP_SECURE_FAILURE", "0x80080005": "CO_E_SERVER_EXEC_FAILURE",
    "0x800F081F": "CBS_E_SOURCE_MISSING", "0x80070643": "ERROR_INSTALL_FAILURE", "0x80240022": "WU_E_ALL_UPDATES_FAILED",
    "0x80070002": "ERROR_FILE_NOT_FOUND", "0x80070003": "ERROR_PATH_NOT_FOUND", "0x8007000E": "E_OUTOFMEMORY",
    "0x80070020": "ERROR_SHARING_VIOLATION", "0x80070057": "E_INVALIDARG", "0x800705B4": "ERROR_TIMEOUT",
    "0x80070BC2": "ERROR_SUCCESS_REBOOT_REQUIRED", "0x80070BC9": "ERROR_FAIL_REBOOT_REQUIRED",
    "0x8007000D": "ERROR_INVALID_DATA", "0x80072EE7": "ERROR_INTERNET_NAME_NOT_RESOLVED",
    "0x80072F76": "ERROR_HTTP_HEADER_NOT_FOUND", "0x80072F78": "ERROR_HTTP_INVALID_SERVER_RESPONSE",
    "0x80072EFF": "ERROR_INTERNET_CONNECTION_RESET", "0x80072F0C": "ERROR_INTERNET_CLIENT_AUTH_CERT_NEEDED",
    "0x80072F7D": "ERROR_INTERNET_SECURITY_CHANNEL_ERROR", "0x80072F89": "ERROR_INTERNET_SEC_INVALID_CERT",
    "0x80190193": "BG_E_HTTP_ERROR_403", "0x80190194": "BG_E_HTTP_ERROR_404", "0x80190197": "BG_E_HTTP_ERROR_407",
    "0x801901F4": "BG_E_HTTP_ERROR_500", "0x801901F7": "BG_E_HTTP_ERROR_503", "0x800F0922": "CBS_E_INSTALLERS_FAILED",
    "0x800F0831": "CBS_E_STORE_CORRUPTION", "0x80073712": "ERROR_SXS_COMPONENT_STORE_CORRUPT",
    "0x8007371B": "ERROR_SXS_TRANSACTION_CLOSURE_INCOMPLETE", "0x800B0109": "CERT_E_UNTRUSTEDROOT",
    "0x800B0101": "CERT_E_EXPIRED", "0x80092004": "CRYPT_E_NOT_FOUND", "0x80246007": "WU_E_DM_NOTDOWNLOADED",
    "0x80004005": "E_FAIL", "0x8000FFFF": "E_UNEXPECTED", "0x80004002": "E_NOINTERFACE",
    "0x8007045B": "ERROR_SHUTDOWN_IN_PROGRESS", "0x800704C7": "ERROR_CANCELLED", "0x80070490": "ERROR_NOT_FOUND",
}

WIN32 = {
    2: "ERROR_FILE_NOT_FOUND", 3: "ERROR_PATH_NOT_FOUND", 5: "ERROR_ACCESS_DENIED", 8: "ERROR_NOT_ENOUGH_MEMORY",
    13: "ERROR_INVALID_DATA", 14: "ERROR_OUTOFMEMORY", 32: "ERROR_SHARING_VIOLATION", 87: "ERROR_INVALID_PARAMETER",
    112: "ERROR_DISK_FULL", 1058: "ERROR_SERVICE_DISABLED", 1060: "ERROR_SERVICE_DOES_NOT_EXIST",
    1115: "ERROR_SHUTDOWN_IN_PROGRESS", 1167: "ERROR_DEVICE_NOT_CONNECTED", 1223: "ERROR_CANCELLED",
    1392: "ERROR_FILE_CORRUPT", 1460: "ERROR_TIMEOUT", 1603: "ERROR_INSTALL_FAILURE",
    1618: "ERROR_INSTALL_ALREADY_RUNNING", 1638: "ERROR_PRODUCT_VERSION", 3010: "ERROR_SUCCESS_REBOOT_REQUIRED",
    3017: "ERROR_FAIL_REBOOT_REQUIRED", 14098: "ERROR_SXS_COMPONENT_STORE_CORRUPT", 12002: "ERROR_INTERNET_TIMEOUT",
    12007: "ERROR_INTERNET_NAME_NOT_RESOLVED", 12029: "ERROR_INTERNET_CANNOT_CONNECT",
    12030: "ERROR_INTERNET_CONNECTION_ABORTED", 12031: "ERROR_INTERNET_CONNECTION_RESET",
    12038: "ERROR_INTERNET_SEC_CERT_CN_INVALID", 12044: "ERROR_INTERNET_CLIENT_AUTH_CERT_NEEDED",
    12057: "ERROR_INTERNET_SEC_CERT_REV_FAILED", 12157: "ERROR_INTERNET_SECURITY_CHANNEL_ERROR",
    12175: "ERROR_WINHTTP_SECURE_FAILURE",
}


def _reference(name: str) -> list[dict[str, str]]:
    with shared_path("reference", name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _data_rows(name: str) -> list[list[str]]:
    text = (resources.files("umlogs.pipeline") / "data" / name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _is_code(text: str) -> bool:
    return re.fullmatch(r"0x[0-9A-F]{8}", text) is not None


def _wu_code(row: dict[str, str]) -> str:
    return "0x" + row["hresult"][2:].upper()


def test_every_windows_update_code_is_in_the_catalog_with_its_symbolic_name():
    rows = _reference("wu_codes.tsv")
    assert len({_wu_code(r) for r in rows}) == 475
    for row in rows:
        entry = lookup(row["hresult"])
        assert entry is not None, row["hresult"]
        assert entry.name == row["symbolic_name"], row["hresult"]


def test_every_non_8024_code_is_in_the_catalog():
    codes = {r["hresult"] for r in _reference("non_8024_codes.tsv") if _is_code(r["hresult"])}
    assert len(codes) >= 20
    assert sorted(c for c in codes if lookup(c) is None) == []


@pytest.mark.parametrize("code,name", sorted(COMMON.items()))
def test_common_codes_have_their_names(code, name):
    assert lookup(code).name == name


@pytest.mark.parametrize("code", EXPLAINED)
def test_codes_the_guide_cares_about_have_causes_and_actions(code):
    entry = lookup(code)
    assert entry.causes and entry.actions


def test_guide_codes_point_at_their_scenarios():
    for code in ("0x8024402C", "0x8024401C", "0x8024402F", "0x8024001E", "0x8024002E", "0x80072EE2", "0x80070422"):
        assert "hresult" in lookup(code).scenarios, code
    for code in ("0x8024402C", "0x8024401C", "0x8024402F", "0x80072EE2", "0x80072EFD", "0x80240438"):
        assert "machine-unable-to-communicate" in lookup(code).scenarios, code


def test_catalog_file_is_well_formed():
    header, *rows = _data_rows("hresults.tsv")
    assert header == ["code", "name", "facility", "component", "meaning", "causes", "actions", "scenarios"]
    codes = [r[0] for r in rows]
    assert codes == sorted(codes) and len(codes) == len(set(codes))
    for code, name, facility, component, meaning, causes, actions, scenarios in rows:
        assert re.fullmatch(r"0x[0-9A-F]{8}", code)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", name), code
        assert facility == decode(code).facility_name, code
        assert component and meaning.strip() and meaning.endswith("."), code
        assert set(filter(None, scenarios.split(","))) <= set(SCENARIOS), code
        if is_failure(code):
            assert "hresult" in scenarios.split(","), code


def test_meanings_are_not_the_vendor_sentences():
    def plain(text: str) -> str:
        return re.sub(r"[`.]", "", text).strip().lower()

    pairs = [(_wu_code(r), r["description"]) for r in _reference("wu_codes.tsv")]
    pairs += [(r["hresult"], r[k]) for r in _reference("non_8024_codes.tsv") if _is_code(r["hresult"])
              for k in ("stated_description", "stated_cause_or_mitigation")]
    for code, vendor in pairs:
        entry = lookup(code)
        for ours in (entry.meaning, "; ".join(entry.causes), "; ".join(entry.actions)):
            ratio = difflib.SequenceMatcher(None, plain(ours), plain(vendor)).ratio()
            assert ratio < 0.75, (code, ours, vendor)


def test_win32_table_is_well_formed_and_names_the_usual_errors():
    header, *rows = _data_rows("win32_errors.tsv")
    assert header == ["number", "name", "meaning"]
    numbers = [int(r[0]) for r in rows]
    assert numbers == sorted(set(numbers))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", name) and meaning for _, name, meaning in rows)
    assert {n: name for n, name, _ in ((int(a), b, c) for a, b, c in rows) if n in WIN32} == WIN32
    assert len([n for n in numbers if 12001 <= n <= 12179]) >= 80


def test_catalog_names_agree_with_the_win32_table():
    for row in catalog_table().to_pylist():
        if row["facility"] == 7 and not row["name"].startswith("E_"):
            assert decode(row["code"]).win32_name == row["name"], row["code"]


@pytest.mark.parametrize("text", ["0x8024402C", "0X8024402c", "8024402c", "-2145107924", "2149859372", 0x8024402C])
def test_normalize_accepts_the_written_forms(text):
    assert normalize(text) == "0x8024402C"


@pytest.mark.parametrize("text,code", [
    ("80070005", "0x80070005"),  # eight digits: hex
    ("00240001", "0x00240001"),
    ("  0x240001 ", "0x00240001"),
    ("abc", "0x00000ABC"),       # bare hex needs a letter
    ("1234", "0x000004D2"),      # otherwise decimal
    ("+80070005", "0x04C5C575"),  # a sign always means decimal
    ("-1", "0xFFFFFFFF"),
    (-(2**31), "0x80000000"),
])
def test_normalize_rule_for_bare_digits(text, code):
    assert normalize(text) == code


@pytest.mark.parametrize("junk", [
    "", "   ", "0x", "0x123456789", "123456789ab", "hello", "8024402G", "4294967296", "-2147483649",
    "12.5", "-0x8024402C", "0x 8024402C", "--1", "HRESULT 0x8024402C", None, True, 1.5, 2**32, -(2**31) - 1,
])
def test_normalize_rejects_junk(junk):
    with pytest.raises(HResultError):
        normalize(junk)


def test_is_failure_reads_the_severity_bit():
    assert is_failure("0x80240022") and is_failure(-1)
    assert not is_failure("0x00240005") and not is_failure(0x7FFFFFFF)


def test_decode_win32_service_disabled():
    # 0x80070422: S=1, facility 0x007 = 7 (WIN32), code 0x0422 = 4*256 + 2*16 + 2 = 1058.
    d = decode("0x80070422")
    assert (d.severity, d.facility, d.facility_name, d.code_value) == ("failure", 7, "WIN32", 1058)
    assert (d.win32, d.win32_name, d.http_status) == (1058, "ERROR_SERVICE_DISABLED", None)


def test_decode_wininet_timeout():
    # 0x2EE2 = 2*4096 + 14*256 + 14*16 + 2 = 12002 (INTERNET_ERROR_BASE 12000 + 2).
    d = decode("0x80072EE2")
    assert (d.facility, d.win32, d.win32_name) == (7, 12002, "ERROR_INTERNET_TIMEOUT")


def test_decode_http_status():
    # 0x80190193: facility 0x19 = 25 (HTTP), code 0x193 = 256 + 9*16 + 3 = 403.
    d = decode("0x80190193")
    assert (d.facility, d.facility_name, d.http_status, d.win32) == (25, "HTTP", 403, None)


def test_decode_windows_update_facility():
    # 0x80240022: facility 0x24 = 36 (WINDOWSUPDATE), code 0x22 = 34.
    d = decode("0x80240022")
    assert (d.severity, d.facility, d.facility_name, d.code_value) == ("failure", 36, "WINDOWSUPDATE", 34)
    assert d.win32 is None and d.http_status is None


def test_decode_success_code():
    # 0x00240001: S=0, facility 36, code 1 (WU_S_SERVICE_STOP).
    d = decode("0x00240001")
    assert (d.severity, d.facility, d.code_value, d.win32) == ("success", 36, 1, None)
    assert decode("0x00070005").win32 is None  # facility 7 without the failure bit is not a wrapped Win32 error


@pytest.mark.parametrize("code,facility,name", [
    ("0x80004005", 0, "NULL"), ("0x80010108", 1, "RPC"), ("0x80040154", 4, "ITF"), ("0x80080005", 8, "WINDOWS"),
    ("0x80092004", 9, "SECURITY"), ("0x800B0109", 11, "CERT"), ("0x800F081F", 15, "SETUPAPI"),
    ("0x80131500", 19, "URT"), ("0x80200053", 32, "BACKGROUNDCOPY"), ("0x80D02002", 208, "DELIVERY_OPTIMIZATION"),
])
def test_decode_facilities(code, facility, name):
    assert (decode(code).facility, decode(code).facility_name) == (facility, name)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_32_bit_value_round_trips_through_its_written_forms(value):
    code = normalize(value)
    assert code == f"0x{value:08X}" and int(code, 16) == value
    signed = value - 2**32 if value >= 2**31 else value
    forms = [f"0x{value:x}", f"0X{value:08X}", f"{value:08x}", f"+{value}", signed]
    if signed < 0:
        forms.append(str(signed))
    if len(str(value)) != 8:  # eight bare digits are read as hex (see normalize)
        forms.append(str(value))
    assert {normalize(form) for form in forms} == {code}


@given(st.integers(min_value=-(2**31), max_value=2**32 - 1))
def test_decode_and_explain_never_raise(value):
    d = decode(value)
    assert d.code_value == value & 0xFFFF and (d.severity == "failure") == (value < 0 or value >= 2**31)
    assert explain(value)["meaning"]


def test_explain_codes_outside_the_catalog():
    e = explain("0x800700B7")
    assert (e["name"], e["component"], e["in_catalog"], e["win32"]) == ("ERROR_ALREADY_EXISTS", "Win32", False, 183)
    assert explain("0x80072EF3")["component"] == "WinINet/WinHTTP"
    assert "HTTP status 300" in explain("0x8019012C")["meaning"]
    assert "WINDOWSUPDATE" in explain("0x8024FFFE")["meaning"]


def test_explain_catalog_code_has_everything():
    e = explain(-2145107924)
    assert e["name"] == "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED" and e["in_catalog"]
    assert e["causes"] and e["actions"] and "hresult" in e["scenarios"]
    assert e["facility_name"] == "WINDOWSUPDATE"


def test_catalog_table_registers_in_duckdb():
    table = catalog_table()
    assert table.schema == CATALOG_SCHEMA and table.num_rows == len(_data_rows("hresults.tsv")) - 1
    con = duckdb.connect()
    con.register("catalog", table)
    assert con.execute("select name from catalog where code = '0x80070422'").fetchone() == ("ERROR_SERVICE_DISABLED",)
    failing = con.execute("select count(*) from catalog where is_failure and not list_contains(scenarios, 'hresult')")
    assert failing.fetchone() == (0,)


def test_doctests():
    assert doctest.testmod(hresult).failed == 0
