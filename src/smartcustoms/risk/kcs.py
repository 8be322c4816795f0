"""Reading declaration tables into the risk engine's canonical frame.

The engine works on one canonical column layout (snake-case customs names) so that the KCS data set
(Korea Customs Service synthetic declarations) and the platform's own declarations go through the same
model. Every bad input is reported as a `RiskInputError` naming the column, so the CLI exits 2 with a
message an analyst can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t

FORMATS = ("kcs", "platform")


class RiskInputError(DomainError):
    """Bad training or scoring input (the risk slice's one error type)."""


# KCS header -> canonical name. The HS column is one of the HS_COLUMNS below.
KCS_COLUMNS: dict[str, str] = {
    "Declaration ID": "declaration_id",
    "Date": "date",
    "Office ID": "office",
    "Process Type": "process_type",
    "Import Type": "import_type",
    "Import Use": "import_use",
    "Payment Type": "payment_type",
    "Mode of Transport": "transport_mode",
    "Declarant ID": "declarant_id",
    "Importer ID": "importer_id",
    "Seller ID": "seller_id",
    "Courier ID": "courier_id",
    "Country of Departure": "departure_country",
    "Country of Origin": "origin",
    "Tax Rate": "tax_rate",
    "Tax Type": "tax_type",
    "Country of Origin Indicator": "origin_indicator",
    "Net Mass": "net_mass_kg",
    "Item Price": "value",
}
HS_COLUMNS = ("HS6 Code", "HS10 Code", "HS Code", "HS code")
LABEL_COLUMNS = {"Fraud": "fraud", "Critical Fraud": "critical_fraud"}
# Columns that may be blank on a row (a declaration without seller or courier).
OPTIONAL_VALUES = {"Seller ID", "Courier ID"}
NUMERIC = {"Tax Rate", "Net Mass", "Item Price"}

# Canonical columns every format maps into; categorical ones are strings, numeric ones floats.
CATEGORICAL = [
    "office",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "transport_mode",
    "departure_country",
    "origin",
    "tax_type",
    "origin_indicator",
]
IDENTIFIERS = ["declarant_id", "importer_id", "seller_id", "courier_id"]
CANONICAL = [
    "declaration_id",
    "date",
    *CATEGORICAL,
    *IDENTIFIERS,
    "hs_code",
    "tax_rate",
    "net_mass_kg",
    "value",
    "aeo",
]


def _problem(column: str, message: str, code: str = "invalid_column") -> Problem:
    return Problem(code, (column,), message)


def read_kcs(paths: Iterable[str | Path], *, require_labels: bool) -> pd.DataFrame:
    """Read one or more KCS CSV files into the canonical frame (labels kept when present)."""
    frames = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise RiskInputError(Problem("not_found", ("data",), t("file not found: {path}", path=p)))
        try:
            raw = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise RiskInputError(
                Problem("unreadable", ("data",), t("{path}: not a readable CSV file ({error})", path=p, error=exc))
            ) from exc
        frames.append(from_kcs_frame(raw, require_labels=require_labels, source=str(p)))
    if not frames:
        raise RiskInputError(Problem("missing", ("data",), t("no data file given")))
    out = pd.concat(frames, ignore_index=True)
    if require_labels:
        check_labels(out)
    return out


def from_kcs_frame(raw: pd.DataFrame, *, require_labels: bool, source: str = "data") -> pd.DataFrame:
    """Validate a KCS-layout table (strings or typed) and convert it to the canonical frame."""
    problems: list[Problem] = []
    hs_col = next((c for c in HS_COLUMNS if c in raw.columns), None)
    if hs_col is None:
        problems.append(
            _problem(
                "HS6 Code", t("{source}: missing column 'HS6 Code' (or 'HS10 Code')", source=source), "missing_column"
            )
        )
    for col in KCS_COLUMNS:
        if col not in raw.columns:
            problems.append(
                _problem(col, t("{source}: missing column '{column}'", source=source, column=col), "missing_column")
            )
    if require_labels and "Fraud" not in raw.columns:
        problems.append(
            _problem(
                "Fraud",
                t("{source}: missing label column 'Fraud' needed for training", source=source),
                "missing_column",
            )
        )
    if problems:
        raise RiskInputError(problems)
    assert hs_col is not None
    out = pd.DataFrame(index=raw.index)
    for col, name in KCS_COLUMNS.items():
        series = raw[col]
        if col in NUMERIC:
            values = pd.to_numeric(series, errors="coerce")
            bad = values.isna() & series.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                problems.append(
                    _problem(
                        col,
                        t(
                            "{source}: column '{column}' must be numeric; row {row} has {value}",
                            source=source,
                            column=col,
                            row=row + 1,
                            value=repr(series.iloc[row]),
                        ),
                        "wrong_type",
                    )
                )
            elif values.isna().any():
                row = int(np.flatnonzero(values.isna().to_numpy())[0])
                problems.append(
                    _problem(
                        col,
                        t("{source}: column '{column}' is empty on row {row}", source=source, column=col, row=row + 1),
                        "missing_value",
                    )
                )
            out[name] = values.astype("float64")
        elif col == "Date":
            dates = pd.to_datetime(series, errors="coerce", format="%Y-%m-%d")
            if dates.isna().any():
                row = int(np.flatnonzero(dates.isna().to_numpy())[0])
                problems.append(
                    _problem(
                        col,
                        t(
                            "{source}: column 'Date' must be YYYY-MM-DD; row {row} has {value}",
                            source=source,
                            row=row + 1,
                            value=repr(series.iloc[row]),
                        ),
                        "wrong_type",
                    )
                )
            out[name] = dates.astype("datetime64[ns]")
        else:
            text = series.astype("string").str.strip()
            if col not in OPTIONAL_VALUES and text.isna().any() and col != "Declaration ID":
                row = int(np.flatnonzero(text.isna().to_numpy())[0])
                problems.append(
                    _problem(
                        col,
                        t("{source}: column '{column}' is empty on row {row}", source=source, column=col, row=row + 1),
                        "missing_value",
                    )
                )
            out[name] = text.astype(object).where(text.notna(), None)
    hs = raw[hs_col].astype("string").str.strip().str.replace(".", "", regex=False)
    bad_hs = ~hs.fillna("").str.fullmatch(r"\d{4,10}")
    if bad_hs.any():
        row = int(np.flatnonzero(bad_hs.to_numpy())[0])
        problems.append(
            _problem(
                hs_col,
                t(
                    "{source}: column '{column}' must hold 4–10 digit HS codes; row {row} has {value}",
                    source=source,
                    column=hs_col,
                    row=row + 1,
                    value=repr(raw[hs_col].iloc[row]),
                ),
                "wrong_type",
            )
        )
    # Leading zeros are lost when a tool wrote the code as a number (chapters 01–09).
    width = 10 if hs_col == "HS10 Code" else 6
    out["hs_code"] = (
        hs.fillna("").str.zfill(width).astype(object) if hs_col in ("HS6 Code", "HS10 Code") else hs.astype(object)
    )
    out["aeo"] = False
    for col, name in LABEL_COLUMNS.items():
        if col not in raw.columns:
            continue
        lab = pd.to_numeric(raw[col], errors="coerce")
        allowed = [0, 1] if col == "Fraud" else [0, 1, 2]
        bad = (lab.isna() & raw[col].notna()) | (~lab.isin(allowed) & lab.notna())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            problems.append(
                _problem(
                    col,
                    t(
                        "{source}: label column '{column}' must be one of {allowed}; row {row} has {value}",
                        source=source,
                        column=col,
                        allowed=allowed,
                        row=row + 1,
                        value=repr(raw[col].iloc[row]),
                    ),
                    "wrong_type",
                )
            )
        out[name] = lab.astype("float64")
    if problems:
        raise RiskInputError(problems)
    if out["declaration_id"].isna().any():
        out["declaration_id"] = out["declaration_id"].where(
            out["declaration_id"].notna(), pd.Series(raw.index.astype(str), index=raw.index)
        )
    return out.reset_index(drop=True)


def check_labels(frame: pd.DataFrame) -> None:
    """Training needs both classes in the `Fraud` column."""
    if "fraud" not in frame.columns:
        raise RiskInputError(_problem("Fraud", t("missing label column 'Fraud' needed for training"), "missing_column"))
    known = frame["fraud"].dropna()
    if (known == 1).sum() == 0:
        raise RiskInputError(
            _problem(
                "Fraud", t("label column 'Fraud' has no positive labels (no 1): nothing to learn"), "no_positive_labels"
            )
        )
    if (known == 0).sum() == 0:
        raise RiskInputError(
            _problem(
                "Fraud", t("label column 'Fraud' has no negative labels (no 0): nothing to learn"), "no_negative_labels"
            )
        )


def from_declaration(declaration: dict[str, object]) -> list[dict[str, object]]:
    """Platform declaration (clearance core shape) -> canonical rows, one per item."""
    rows: list[dict[str, object]] = []
    items = declaration.get("items") or []
    if not isinstance(items, list) or not items:
        raise RiskInputError(Problem("missing", ("items",), t("a declaration needs at least one item")))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RiskInputError(Problem("invalid", ("items", i), t("item must be a mapping")))
        for key in ("hs_code", "origin", "net_mass_kg", "value"):
            if item.get(key) in (None, ""):
                raise RiskInputError(
                    Problem("missing", ("items", i, key), t("item field '{field}' is required", field=key))
                )
        rows.append(
            {
                "declaration_id": str(declaration.get("declaration_id") or declaration.get("id") or ""),
                "date": declaration.get("date"),
                "office": _opt_str(declaration.get("office")),
                "process_type": _opt_str(declaration.get("process_type")),
                "import_type": _opt_str(declaration.get("import_type")),
                "import_use": _opt_str(declaration.get("import_use")),
                "payment_type": _opt_str(declaration.get("payment_type")),
                "transport_mode": _opt_str(declaration.get("transport_mode")),
                "departure_country": _opt_str(item.get("departure_country") or declaration.get("departure_country")),
                "origin": _opt_str(item.get("origin")),
                "tax_type": _opt_str(item.get("tax_type")),
                "origin_indicator": _opt_str(item.get("origin_indicator")),
                "declarant_id": _opt_str(declaration.get("declarant_id")),
                "importer_id": _opt_str(declaration.get("importer_id")),
                "seller_id": _opt_str(declaration.get("seller_id")),
                "courier_id": _opt_str(declaration.get("courier_id")),
                "hs_code": str(item["hs_code"]).replace(".", "").strip(),
                "tax_rate": float(item["tax_rate"]) if item.get("tax_rate") is not None else float("nan"),
                "net_mass_kg": float(item["net_mass_kg"]),
                "value": float(item["value"]),
                "aeo": bool(declaration.get("aeo", False)),
            }
        )
    return rows


def _opt_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
