"""The declaration as filed, named after the WCO Data Model; Pydantic checks types and shapes only.

Business rules (codes in the schedule, totals, plausibility) live in `validation.py` so that every
problem of a filing is reported at once.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Code2 = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2)]
Code3 = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=3, max_length=3)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
Quantity = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class DeclarationType(StrEnum):
    IMPORT = "import"
    EXPORT = "export"


class TransportMode(StrEnum):
    """WCO/UNECE Rec. 19 modes of transport."""

    SEA = "sea"
    RAIL = "rail"
    ROAD = "road"
    AIR = "air"
    POST = "post"
    FIXED = "fixed"
    INLAND_WATER = "inland_water"


class TransportDocumentType(StrEnum):
    BILL_OF_LADING = "BL"
    AIR_WAYBILL = "AWB"
    CMR = "CMR"
    RAIL_CONSIGNMENT = "CIM"
    POSTAL = "POST"


class Party(Strict):
    id: Ident = Field(description="Party identification number (TIN/EORI/BAN)")
    name: Text
    country: Code2 | None = None
    address: Annotated[str, StringConstraints(max_length=512)] | None = None


class Transport(Strict):
    mode: TransportMode
    means_id: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="Vessel name/IMO, flight number or vehicle plate"
    )
    arrival_date: date | None = None


class TransportDocument(Strict):
    type: TransportDocumentType
    reference: Ident


class Preference(Strict):
    fta: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=16)]
    proof_of_origin_ref: Ident | None = None


class Item(Strict):
    line_no: int = Field(ge=1, le=9999)
    description: Text
    tariff_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=14)]
    origin_country: Code2
    preference: Preference | None = None
    quantity: Quantity
    quantity_unit: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=8)]
    net_mass_kg: Quantity
    gross_mass_kg: Quantity | None = None
    value: Money = Field(description="Item value in the invoice currency")
    permits: list[Ident] = Field(
        default_factory=list,
        max_length=10,
        description="Numbers of the permits, licences or certificates other agencies issued for this line",
    )


class AttachedDocument(Strict):
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    reference: Ident
    file_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    content_base64: Annotated[str, StringConstraints(max_length=1_500_000)] | None = None


class DeclarationIn(Strict):
    """A customs declaration as a trader or broker files it."""

    lrn: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35)] = Field(
        description="Local reference number, unique per declarant; resubmitting it is idempotent"
    )
    type: DeclarationType
    procedure: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=7)] = Field(
        "4000", description="Customs procedure code (e.g. 4000 release for free circulation)"
    )
    customs_office: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=8)]
    declarant: Party
    broker: Party | None = None
    importer: Party
    exporter: Party
    seller: Party | None = None
    country_of_dispatch: Code2
    country_of_destination: Code2
    transport: Transport
    transport_documents: list[TransportDocument] = Field(default_factory=list, max_length=20)
    manifest_ref: Ident | None = None
    currency: Code3
    incoterm: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=3, max_length=3)]
    invoice_total: Money
    freight: Money = Decimal(0)
    insurance: Money = Decimal(0)
    items: list[Item] = Field(min_length=1, max_length=999)
    documents: list[AttachedDocument] = Field(default_factory=list, max_length=50)


class DecisionIn(Strict):
    action: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class InspectionIn(Strict):
    result: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)] = Field(
        description="found or not_found"
    )
    findings: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = None
    additional_duty: Money = Decimal(0)
