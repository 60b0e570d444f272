"""Ad spend from the ad platforms' own report exports, translated to the generic ``ad_spend`` rows.

The generic format (``growthwheel import ad_spend FILE``: ``date, channel, spend, utm_campaign,
impressions, clicks, currency``) takes any spend; this module reads three platforms' report
exports as their users download them, so nobody has to rework a spreadsheet. The exact columns,
with example files, are in ``examples/marketing/README.md``.

* ``google_ads`` — Google Ads → Reports → a report with *Day* and *Campaign* → Download → CSV.
  The file opens with a title line and a date-range line before the header; *Total* lines at the
  end are skipped. Columns read: ``Day``, ``Campaign``, ``Cost``, and when present
  ``Currency code``, ``Impr.`` (or ``Impressions``), ``Clicks``.
* ``meta`` — Meta Ads Manager → Campaigns → Breakdown → By time → Day → Export table data → CSV.
  Columns read: ``Day`` (else ``Reporting starts`` when it equals ``Reporting ends``),
  ``Campaign name``, ``Amount spent (XXX)`` (the currency is the one in brackets), and when
  present ``Impressions``, ``Link clicks`` (else ``Clicks (all)``).
* ``oceanengine`` — 巨量引擎 (巨量广告) → 数据报表 → 分日 → 下载 CSV. Columns read: ``日期`` (or
  ``时间``), the campaign name from ``项目名称`` / ``广告计划名称`` / ``计划名称`` / ``广告组名称``
  (the first present), ``消耗`` (or ``消耗(元)``, CNY), and when present ``展示数``, ``点击数``.

How values are translated, the same for all three:

* ``date`` from the day column (``2024-12-01``, ``2024/12/1``, ``Dec 1, 2024`` or ``December 1,
  2024``); ``utm_campaign`` = the campaign name as written; ``channel`` = the platform's usual
  ``utm_source`` (``google``, ``facebook``, ``douyin``) unless one is given, so that spend meets
  the touchpoints of the same channel; ``utm_source`` = the channel, ``utm_medium`` =
  ``cpc`` / ``paid_social`` / ``cpc``.
* Amounts lose thousands separators and currency signs (``"1,234.50"``, ``¥1,234.50``); ``--`` and
  empty cells are zero. Counts lose separators too.
* Rows of the same day and campaign (a report segmented by device or ad set) are **added up**,
  because ``ad_spend`` keeps one row per day × channel × campaign. A row whose amount cannot be
  read is passed on as written, so that validation quarantines it with file, row and reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.warehouse.formats.base import Row, decode, require_columns


@dataclass(frozen=True)
class Platform:
    """An ad platform's report export."""

    name: str
    label: str
    channel: str
    medium: str
    parse: Callable[[Path], tuple[list[str], list[Row]]]


def _rows(text: str, path: Path, header_at: Callable[[list[str]], bool]) -> tuple[list[str], list[Row]]:
    """Header (first line for which ``header_at`` holds) and the data rows after it, numbered by
    their line in the file (1-based, so quarantine points at the line a person sees)."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a readable CSV file ({exc})") from None
    for at, record in enumerate(records):
        cells = [c.replace("\ufeff", "").strip() for c in record]
        if header_at(cells):
            rows: list[Row] = []
            for number, rec in enumerate(records[at + 1:], start=at + 2):
                if not any(c.strip() for c in rec):
                    continue
                rows.append((number, {h: rec[i].strip() if i < len(rec) else ""
                                      for i, h in enumerate(cells) if h}))
            return cells, rows
    raise ImportFileError(f"{path}: no header row of this platform's report found")


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Google's "CSV for Excel" is UTF-16, tabs
        text = data.decode("utf-16")
        return "\n".join(",".join(_quote(c) for c in line.split("\t")) for line in text.splitlines())
    return decode(data, path)


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in ',"\n') else cell


def _google(path: Path) -> tuple[list[str], list[Row]]:
    header, rows = _rows(_read(path), path, lambda c: "Day" in c and "Campaign" in c)
    require_columns(path, header, ("Day", "Campaign", "Cost"))
    out: list[Row] = []
    for number, v in rows:
        if v.get("Day", "").lower().startswith("total") or v.get("Campaign", "").lower().startswith("total"):
            continue
        out.append((number, {
            "date": v["Day"], "campaign": v["Campaign"], "spend": v["Cost"],
            "currency": v.get("Currency code", ""),
            "impressions": v.get("Impr.", v.get("Impressions", "")), "clicks": v.get("Clicks", ""),
        }))
    return header, out


_META_SPENT = re.compile(r"^Amount spent \(([A-Z]{3})\)$")


def _meta(path: Path) -> tuple[list[str], list[Row]]:
    header, rows = _rows(_read(path), path, lambda c: "Campaign name" in c)
    spent = [h for h in header if _META_SPENT.match(h)]
    if not spent:
        raise ImportFileError(
            f"{path}: missing required column Amount spent (XXX); found {', '.join(header)}")
    match = _META_SPENT.match(spent[0])
    currency = match.group(1) if match else ""
    has_day = "Day" in header
    if not has_day:
        require_columns(path, header, ("Reporting starts", "Reporting ends"))
    out: list[Row] = []
    for number, v in rows:
        day = v.get("Day", "")
        if not has_day:
            day = v["Reporting starts"]
            if v["Reporting starts"] != v["Reporting ends"]:
                raise ImportFileError(
                    f"{path}: row {number} covers {v['Reporting starts']} to {v['Reporting ends']}; "
                    "export with Breakdown → By time → Day")
        out.append((number, {
            "date": day, "campaign": v.get("Campaign name", ""), "spend": v[spent[0]],
            "currency": currency, "impressions": v.get("Impressions", ""),
            "clicks": v.get("Link clicks", v.get("Clicks (all)", "")),
        }))
    return header, out


_OCEAN_DATE = ("日期", "时间")
_OCEAN_CAMPAIGN = ("项目名称", "广告计划名称", "计划名称", "广告组名称")
_OCEAN_SPEND = ("消耗", "消耗(元)", "消耗（元）")


def _first(header: Sequence[str], names: Sequence[str], path: Path) -> str:
    for name in names:
        if name in header:
            return name
    raise ImportFileError(f"{path}: missing required column {' / '.join(names)}; found {', '.join(header)}")


def _oceanengine(path: Path) -> tuple[list[str], list[Row]]:
    header, rows = _rows(_read(path), path, lambda c: any(n in c for n in _OCEAN_SPEND))
    day, campaign, spend = (_first(header, names, path)
                            for names in (_OCEAN_DATE, _OCEAN_CAMPAIGN, _OCEAN_SPEND))
    out: list[Row] = []
    for number, v in rows:
        if v.get(day, "") in ("总计", "合计"):
            continue
        out.append((number, {
            "date": v[day], "campaign": v[campaign], "spend": v[spend], "currency": "CNY",
            "impressions": v.get("展示数", ""), "clicks": v.get("点击数", ""),
        }))
    return header, out


PLATFORMS: dict[str, Platform] = {
    "google_ads": Platform("google_ads", "Google Ads", "google", "cpc", _google),
    "meta": Platform("meta", "Meta Ads Manager", "facebook", "paid_social", _meta),
    "oceanengine": Platform("oceanengine", "巨量引擎 Ocean Engine", "douyin", "cpc", _oceanengine),
}

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_SLASHED = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:\s.*)?$")
_WORDED = re.compile(r"^([A-Za-z]{3})[a-z]*\.? (\d{1,2}), (\d{4})$")


def iso_date(text: str) -> str:
    """``2024/12/1``, ``Dec 1, 2024``, ``2024-12-01 00:00:00`` → ``2024-12-01``; else as written."""
    text = text.strip()
    m = _SLASHED.match(text)
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        m = _WORDED.match(text)
        if m and m[1].lower() in _MONTHS:
            return date(int(m[3]), _MONTHS[m[1].lower()], int(m[2])).isoformat()
    except ValueError:
        return text
    return text


def plain_number(text: str) -> str:
    """``"1,234.50"``, ``¥1,234.50``, ``$12``, ``--`` → ``1234.50``, ``1234.50``, ``12``, ``0``."""
    text = text.strip().replace(",", "").replace("，", "")
    text = re.sub(r"^[¥￥$€£]|^(CNY|RMB|USD|EUR)\s*", "", text).strip()
    return "0" if text in ("", "--", "-") else text


def translate(platform: str, paths: Sequence[Path], *, channel: str | None = None) -> pa.Table:
    """The generic ``ad_spend`` rows (text columns, with ``_file``, ``_file_idx``, ``_row``) of
    the platform's report files; see the module docstring for each value."""
    if platform not in PLATFORMS:
        raise InvalidArgumentError(f"platform: one of {', '.join(PLATFORMS)} (got {platform!r})")
    if not paths:
        raise InvalidArgumentError("no files given")
    spec = PLATFORMS[platform]
    chan = (channel or spec.channel).strip().lower()
    if not chan:
        raise InvalidArgumentError("channel: must not be empty")
    # (date, campaign) → summed row; rows that cannot be summed stay on their own.
    merged: dict[tuple[str, str], dict[str, object]] = {}
    loose: list[dict[str, object]] = []
    for idx, path in enumerate(paths):
        if not Path(path).is_file():
            raise ImportFileError(f"{path}: no such file")
        _, rows = spec.parse(Path(path))
        for number, v in rows:
            record: dict[str, object] = {
                "date": iso_date(v["date"]), "utm_campaign": v["campaign"] or None,
                "spend": plain_number(v["spend"]), "currency": v["currency"] or None,
                "impressions": plain_number(v["impressions"]) if v["impressions"] else None,
                "clicks": plain_number(v["clicks"]) if v["clicks"] else None,
                "_file": str(path), "_file_idx": idx, "_row": number,
            }
            key = (str(record["date"]), str(record["utm_campaign"]))
            try:
                amounts = [Decimal(str(record[k] or "0")) for k in ("spend", "impressions", "clicks")]
            except InvalidOperation:
                loose.append(record)
                continue
            if key in merged and merged[key]["currency"] == record["currency"]:
                kept = merged[key]
                for k, a in zip(("spend", "impressions", "clicks"), amounts, strict=True):
                    if record[k] is not None or kept[k] is not None:
                        kept[k] = str(Decimal(str(kept[k] or "0")) + a)
            else:
                merged[key] = record
    records = [*merged.values(), *loose]
    columns = ("date", "utm_campaign", "spend", "currency", "impressions", "clicks")
    data: dict[str, pa.Array] = {c: pa.array([None if r[c] is None else str(r[c]) for r in records],
                                             pa.string()) for c in columns}
    n = len(records)
    data["channel"] = pa.array([chan] * n, pa.string())
    data["utm_source"] = pa.array([chan] * n, pa.string())
    data["utm_medium"] = pa.array([spec.medium] * n, pa.string())
    data["_file"] = pa.array([str(r["_file"]) for r in records], pa.string())
    data["_file_idx"] = pa.array([int(str(r["_file_idx"])) for r in records], pa.int32())
    data["_row"] = pa.array([int(str(r["_row"])) for r in records], pa.int64())
    return pa.table(data)


def write_generic_csv(rows: pa.Table, target: Path) -> Path:
    """The translated rows as a generic ``ad_spend`` CSV (for handing to a running server)."""
    names = [c for c in rows.column_names if not c.startswith("_")]
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for rec in rows.select(names).to_pylist():
            writer.writerow(["" if rec[c] is None else rec[c] for c in names])
    return target

