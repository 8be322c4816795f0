"""Pydantic's own validation messages (missing field, wrong type, too long...) in the reader's language.

Pydantic writes its messages in English only; each error carries a stable `type` and the values of its
message (`ctx`). English readers get pydantic's text unchanged; others get the catalogue's translation of
the template below for that type, filled with `ctx`. Types not listed fall back to pydantic's English.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smartcustoms.platform.i18n import DEFAULT, normalise
from smartcustoms.platform.i18n.messages import Msg, translate


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    return message


PYDANTIC: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "json_invalid": N_("Invalid JSON: {error}"),
    "json_type": N_("JSON input should be string, bytes or bytearray"),
    "model_type": N_("Input should be an object"),
    "model_attributes_type": N_("Input should be a valid dictionary or object to extract fields from"),
    "dict_type": N_("Input should be a valid dictionary"),
    "list_type": N_("Input should be a valid list"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "too_short": N_("List should have at least {min_length} items after validation, not {actual_length}"),
    "too_long": N_("List should have at most {max_length} items after validation, not {actual_length}"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "decimal_type": N_("Decimal input should be an integer, float, string or Decimal object"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "decimal_max_digits": N_("Decimal input should have no more than {max_digits} digits in total"),
    "decimal_max_places": N_("Decimal input should have no more than {decimal_places} decimal places"),
    "decimal_whole_digits": N_("Decimal input should have no more than {whole_digits} digits before the decimal point"),
    "finite_number": N_("Input should be a finite number"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, {error}"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime, {error}"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime, {error}"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, {error}"),
    "value_error": N_("Value error, {error}"),
    "assertion_error": N_("Assertion failed, {error}"),
    "union_tag_invalid": N_(
        "Input tag '{tag}' found using {discriminator} does not match any of the expected tags: {expected_tags}"
    ),
}


def validation_message(error: Mapping[str, Any], lang: str | None) -> str:
    """The message of one pydantic error (an item of `ValidationError.errors()`) in `lang`."""
    english = str(error.get("msg", "invalid"))
    lang = normalise(lang) or DEFAULT
    template = PYDANTIC.get(str(error.get("type", "")))
    if lang == DEFAULT or template is None:
        return english
    ctx = {k: (v if isinstance(v, str) else str(v)) for k, v in (error.get("ctx") or {}).items()}
    if "error" in ctx:
        # a validator's own message: translated too when the validator raised with a t() message
        raw = (error.get("ctx") or {}).get("error")
        inner = raw.args[0] if isinstance(raw, Exception) and raw.args else raw
        ctx["error"] = translate(inner if isinstance(inner, Msg) else str(inner), lang)
    try:
        return translate(Msg(template, ctx), lang)
    except (KeyError, IndexError):
        return english


def validation_problems(errors: Iterable[Mapping[str, Any]], lang: str | None) -> list[Any]:
    """Pydantic's errors as problems: its error type as the code, the location as the JSON path, the message
    in `lang`. The one conversion the API, the console, the CLI and batch ingest share."""
    from smartcustoms.platform.errors import Problem

    return [
        Problem(
            str(e.get("type", "invalid")),
            tuple(p if isinstance(p, int) else str(p) for p in e.get("loc", ())),
            validation_message(e, lang),
        )
        for e in errors
    ]
