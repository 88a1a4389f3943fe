"""HRESULT codes: read them in any written form, take them apart, and look them up in the catalog.

An HRESULT is a 32-bit value. From the most significant bit down it holds the severity bit
(1 = failure), four flag bits (R, C, N, X), an 11-bit facility (which component produced it)
and a 16-bit code. ``HRESULT_FROM_WIN32`` wraps a Win32 error number *n* as ``0x8007`` + *n*,
and BITS wraps an HTTP status *s* as ``0x8019`` + *s*::

    0x80240022  failure, facility 0x24 (WINDOWSUPDATE), code 0x0022  -> WU_E_ALL_UPDATES_FAILED
    0x80070422  failure, facility 7 (WIN32), code 0x0422 = 1058      -> ERROR_SERVICE_DISABLED
    0x80190193  failure, facility 0x19 (HTTP), code 0x0193 = 403     -> HTTP 403

The catalog (``data/hresults.tsv``) gives each known code its symbolic name, component, meaning,
likely causes, actions and the troubleshooting-guide scenarios it belongs to; ``data/win32_errors.tsv``
names the Win32 errors found inside facility-7 codes.

>>> explain("-2145107924")["name"]
'WU_E_PT_WINHTTP_NAME_NOT_RESOLVED'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import pyarrow as pa

# FACILITY_* values from winerror.h, without the prefix. Where winerror.h gives one value two
# names (9 SSPI/SECURITY, 33 WIA/CONFIGURATION, 39 NAP/SHELL, 61 WINPE/WEBSERVICES), the one met
# in update logs is kept.
FACILITIES: dict[int, str] = {
    0: "NULL", 1: "RPC", 2: "DISPATCH", 3: "STORAGE", 4: "ITF", 7: "WIN32", 8: "WINDOWS",
    9: "SECURITY", 10: "CONTROL", 11: "CERT", 12: "INTERNET", 13: "MEDIASERVER", 14: "MSMQ",
    15: "SETUPAPI", 16: "SCARD", 17: "COMPLUS", 18: "AAF", 19: "URT", 20: "ACS", 21: "DPLAY",
    22: "UMI", 23: "SXS", 24: "WINDOWS_CE", 25: "HTTP", 26: "USERMODE_COMMONLOG", 27: "WER",
    31: "USERMODE_FILTER_MANAGER", 32: "BACKGROUNDCOPY", 33: "CONFIGURATION", 34: "STATE_MANAGEMENT",
    35: "METADIRECTORY", 36: "WINDOWSUPDATE", 37: "DIRECTORYSERVICE", 38: "GRAPHICS", 39: "SHELL",
    40: "TPM_SERVICES", 41: "TPM_SOFTWARE", 42: "UI", 43: "XAML", 44: "ACTION_QUEUE", 48: "PLA",
    49: "FVE", 50: "FWP", 51: "WINRM", 52: "NDIS", 53: "USERMODE_HYPERVISOR", 54: "CMI",
    55: "USERMODE_VIRTUALIZATION", 56: "USERMODE_VOLMGR", 57: "BCD", 58: "USERMODE_VHD",
    59: "USERMODE_HNS", 60: "SDIAG", 61: "WEBSERVICES", 62: "WPN", 63: "WINDOWS_STORE", 64: "INPUT",
    65: "QUIC", 66: "EAP", 70: "IORING", 80: "WINDOWS_DEFENDER", 81: "OPC", 82: "XPS", 83: "RAS",
    84: "MBN", 85: "EAS", 98: "P2P_INT", 99: "P2P", 100: "DAF", 101: "BLUETOOTH_ATT", 102: "AUDIO",
    103: "STATEREPOSITORY", 109: "VISUALCPP", 112: "SCRIPT", 113: "PARSE", 120: "BLB", 121: "BLB_CLI",
    122: "WSBAPP", 128: "BLBUI", 129: "USN", 130: "USERMODE_VOLSNAP", 131: "TIERING",
    133: "WSB_ONLINE", 134: "ONLINE_ID", 135: "DEVICE_UPDATE_AGENT", 136: "DRVSERVICING", 153: "DLS",
    160: "SOS", 173: "OCP_UPDATE_AGENT", 176: "DEBUGGERS", 208: "DELIVERY_OPTIMIZATION",
    231: "USERMODE_SPACES", 232: "USER_MODE_SECURITY_CORE", 234: "USERMODE_LICENSING", 256: "SPP",
    257: "DEPLOYMENT_SERVICES_SERVER", 258: "DEPLOYMENT_SERVICES_IMAGING",
    259: "DEPLOYMENT_SERVICES_MANAGEMENT", 260: "DEPLOYMENT_SERVICES_UTIL",
    261: "DEPLOYMENT_SERVICES_BINLSVC", 263: "DEPLOYMENT_SERVICES_PXE", 264: "DEPLOYMENT_SERVICES_TFTP",
    272: "DEPLOYMENT_SERVICES_TRANSPORT_MANAGEMENT", 278: "DEPLOYMENT_SERVICES_DRIVER_PROVISIONING",
    289: "DEPLOYMENT_SERVICES_MULTICAST_SERVER", 290: "DEPLOYMENT_SERVICES_MULTICAST_CLIENT",
    293: "DEPLOYMENT_SERVICES_CONTENT_PROVIDER", 296: "HSP_SERVICES", 297: "HSP_SOFTWARE",
    305: "LINGUISTIC_SERVICES", 885: "WEB", 886: "WEB_SOCKET",
}

# Component label for codes outside the catalog, as the catalog labels its own rows.
_COMPONENTS = {0: "COM", 4: "COM", 7: "Win32", 25: "HTTP status", 32: "BITS", 36: "Windows Update Agent",
               208: "Delivery Optimization"}

CATALOG_SCHEMA = pa.schema([
    ("code", pa.string()), ("name", pa.string()), ("facility", pa.int16()),
    ("facility_name", pa.string()), ("component", pa.string()), ("meaning", pa.string()),
    ("causes", pa.list_(pa.string())), ("actions", pa.list_(pa.string())),
    ("scenarios", pa.list_(pa.string())), ("is_failure", pa.bool_()),
])

_TSV_HEADER = "code\tname\tfacility\tcomponent\tmeaning\tcauses\tactions\tscenarios"
# Prefixed hex; or bare hex with a letter a-f; or exactly eight digits (hex, as logs write codes).
_HEX = re.compile(r"0x([0-9a-f]{1,8})|((?=.*[a-f])[0-9a-f]{1,8}|[0-9]{8})", re.IGNORECASE)
_DECIMAL = re.compile(r"[+-]?[0-9]{1,10}")


class HResultError(ValueError):
    """The input is not a 32-bit HRESULT in any accepted form."""


def normalize(text: str | int) -> str:
    """Return ``text`` as ``0x`` + 8 upper-case hex digits.

    Accepted forms: ``0x``-prefixed hex (1-8 digits, any case); bare hex of 1-8 digits that has
    at least one letter a-f; exactly 8 bare decimal digits, read as hex because that is how
    codes are written out in logs (``80070005``); any other run of digits, with an optional sign,
    is decimal: signed (-2**31 .. -1) or unsigned (0 .. 2**32-1); a sign always means decimal.
    Ints follow the decimal rule.

    >>> [normalize(x) for x in ("0x8024402C", "8024402c", "-2145107924", "2149859372", 0x240001)]
    ['0x8024402C', '0x8024402C', '0x8024402C', '0x8024402C', '0x00240001']
    >>> try:
    ...     normalize("4 oranges")
    ... except HResultError as error:
    ...     print(error)
    not an HRESULT: '4 oranges'
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif not isinstance(text, str):
        raise HResultError(f"not an HRESULT: {text!r}")
    elif m := _HEX.fullmatch(text.strip()):
        value = int(m.group(1) or m.group(2), 16)
    elif _DECIMAL.fullmatch(text.strip()):
        value = int(text)
    else:
        raise HResultError(f"not an HRESULT: {text!r}")
    if not -(2**31) <= value < 2**32:
        raise HResultError(f"{text!r} is outside the 32-bit range of an HRESULT")
    return f"0x{value & 0xFFFFFFFF:08X}"


def is_failure(code: str | int) -> bool:
    """True when the severity bit is set.

    >>> is_failure("0x80240022"), is_failure("0x00240005")
    (True, False)
    """
    return int(normalize(code), 16) >= 0x80000000


@dataclass(frozen=True)
class Decoded:
    """The fields of one HRESULT. ``facility`` uses winerror.h's ``HRESULT_FACILITY`` mask
    (0x1FFF); ``win32`` is set for failures of facility 7, ``http_status`` for failures of
    facility 0x19 whose code is 100-599."""

    code: str
    severity: str
    facility: int
    facility_name: str | None
    code_value: int
    win32: int | None = None
    win32_name: str | None = None
    http_status: int | None = None


def decode(code: str | int) -> Decoded:
    """Take a code apart into severity, facility and code, and name what can be named.

    >>> d = decode("0x80070422")
    >>> d.severity, d.facility, d.facility_name, d.code_value, d.win32_name
    ('failure', 7, 'WIN32', 1058, 'ERROR_SERVICE_DISABLED')
    >>> decode("0x80190193").http_status, decode("0x00240001").severity
    (403, 'success')
    """
    value = int(code := normalize(code), 16)
    failed = value >= 0x80000000
    facility, low = (value >> 16) & 0x1FFF, value & 0xFFFF
    win32 = low if failed and facility == 7 else None
    known = _win32_table().get(win32) if win32 is not None else None
    return Decoded(
        code=code,
        severity="failure" if failed else "success",
        facility=facility,
        facility_name=FACILITIES.get(facility),
        code_value=low,
        win32=win32,
        win32_name=known[0] if known else None,
        http_status=low if failed and facility == 25 and 100 <= low <= 599 else None,
    )


@dataclass(frozen=True)
class CatalogEntry:
    """One row of ``data/hresults.tsv``; ``facility`` is the FACILITY_* name without prefix."""

    code: str
    name: str
    facility: str
    component: str
    meaning: str
    causes: tuple[str, ...]
    actions: tuple[str, ...]
    scenarios: tuple[str, ...]


def lookup(code: str | int) -> CatalogEntry | None:
    """The catalog entry for ``code``, or None when the catalog does not know it.

    >>> lookup("0x80240022").name, lookup("0x80240022").scenarios[0]
    ('WU_E_ALL_UPDATES_FAILED', 'hresult')
    >>> lookup("0x8024FFFE") is None
    True
    """
    return _catalog().get(normalize(code))


def explain(code: str | int) -> dict[str, object]:
    """Everything known about ``code``, for display. Codes outside the catalog get a name from the
    Win32 table (facility 7) and a meaning built from their fields.

    >>> e = explain(0x800700B7)
    >>> e["name"], e["in_catalog"]
    ('ERROR_ALREADY_EXISTS', False)
    >>> e["meaning"]
    'Win32 error 183 (ERROR_ALREADY_EXISTS) as an HRESULT: The file or object already exists.'
    """
    decoded = decode(code)
    entry = lookup(decoded.code)
    in_catalog = entry is not None
    if entry is None:
        component = _COMPONENTS.get(decoded.facility, decoded.facility_name or "")
        if decoded.win32 is not None and 12000 < decoded.win32 < 13000:
            component = "WinINet/WinHTTP"
        entry = CatalogEntry(decoded.code, decoded.win32_name or "", decoded.facility_name or "",
                             component, _meaning_from_fields(decoded), (), (), ())
    return {
        "code": decoded.code, "name": entry.name or None, "component": entry.component or None,
        "meaning": entry.meaning, "severity": decoded.severity, "facility": decoded.facility,
        "facility_name": decoded.facility_name, "code_value": decoded.code_value,
        "win32": decoded.win32, "win32_name": decoded.win32_name, "http_status": decoded.http_status,
        "causes": list(entry.causes), "actions": list(entry.actions), "scenarios": list(entry.scenarios),
        "in_catalog": in_catalog,
    }


def catalog_table() -> pa.Table:
    """The whole catalog as an Arrow table (``CATALOG_SCHEMA``), sorted by code, ready to be
    registered in DuckDB as ``catalog``.

    >>> table = catalog_table()
    >>> table.schema == CATALOG_SCHEMA, table["code"][0].as_py()
    (True, '0x00000000')
    """
    rows = []
    for e in sorted(_catalog().values(), key=lambda e: e.code):
        d = decode(e.code)
        rows.append({
            "code": e.code, "name": e.name, "facility": d.facility, "facility_name": d.facility_name,
            "component": e.component, "meaning": e.meaning, "causes": list(e.causes),
            "actions": list(e.actions), "scenarios": list(e.scenarios), "is_failure": d.severity == "failure",
        })
    return pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)


def _meaning_from_fields(d: Decoded) -> str:
    if d.win32 is not None:
        known = _win32_table().get(d.win32)
        if known:
            return f"Win32 error {d.win32} ({known[0]}) as an HRESULT: {known[1]}"
        return f"Win32 error {d.win32} as an HRESULT; the number is not in the bundled Win32 table."
    if d.http_status is not None:
        return f"HTTP status {d.http_status} from a server or proxy, reported as an HRESULT."
    source = d.facility_name or f"unknown facility {d.facility}"
    return f"A {d.severity} code from {source} (code {d.code_value:#06x}) that the catalog does not list."


def _data_lines(name: str) -> list[str]:
    text = (resources.files("umlogs.pipeline") / "data" / name).read_text(encoding="utf-8")
    return text.splitlines()


@functools.cache
def _catalog() -> dict[str, CatalogEntry]:
    lines = _data_lines("hresults.tsv")
    if lines[0] != _TSV_HEADER:
        raise ValueError(f"hresults.tsv: unexpected header {lines[0]!r}")
    catalog = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 8:
            raise ValueError(f"hresults.tsv line {number}: {len(fields)} fields, expected 8")
        code, name, facility, component, meaning, causes, actions, scenarios = fields
        catalog[code] = CatalogEntry(code, name, facility, component, meaning, _split(causes, ";"),
                                     _split(actions, ";"), _split(scenarios, ","))
    return catalog


@functools.cache
def _win32_table() -> dict[int, tuple[str, str]]:
    rows = (line.split("\t") for line in _data_lines("win32_errors.tsv")[1:])
    return {int(number): (name, meaning) for number, name, meaning in rows}


def _split(value: str, separator: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(separator) if part.strip())


__all__ = ["FACILITIES", "CATALOG_SCHEMA", "HResultError", "normalize", "is_failure", "Decoded",
           "decode", "CatalogEntry", "lookup", "explain", "catalog_table"]
