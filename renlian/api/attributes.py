"""Attributes in the shape of the spec's detect response (and of match's ext_info qualities)."""

from __future__ import annotations

from typing import Any

from renlian.vision.attributes import Attributes, Qualities

DIGITS = 6  # probabilities and scores are rounded for the wire; nothing downstream needs more


def attribute_body(attributes: Attributes) -> dict[str, Any]:
    """The spec's attribute fields, only those that were requested."""
    body: dict[str, Any] = {}
    if attributes.age is not None:
        body["age"] = round(attributes.age, 2)
    if attributes.beauty is not None:
        body["beauty"] = round(attributes.beauty, 2)
    if attributes.expression is not None:
        body["expression"], probability = attributes.expression
        body["expression_probability"] = round(probability, DIGITS)
    if attributes.faceshape is not None:
        body["faceshape"] = [
            {"type": name, "probability": round(probability, DIGITS)}
            for name, probability in attributes.faceshape
        ]
    if attributes.gender is not None:
        body["gender"], probability = attributes.gender
        body["gender_probability"] = round(probability, DIGITS)
    if attributes.glasses is not None:
        body["glasses"], probability = attributes.glasses
        body["glasses_probability"] = round(probability, DIGITS)
    if attributes.race is not None:
        body["race"], probability = attributes.race
        body["race_probability"] = round(probability, DIGITS)
    if attributes.qualities is not None:
        body["qualities"] = qualities_body(attributes.qualities)
    return body


def qualities_body(qualities: Qualities) -> dict[str, Any]:
    """Occlusion per region, blur, illumination, completeness (0 whole, 1 incomplete) and face type."""
    return {
        "occlusion": {region: round(p, DIGITS) for region, p in qualities.occlusion.items()},
        "blur": round(qualities.blur, DIGITS),
        "illumination": round(qualities.illumination),
        "completeness": round(qualities.incompleteness, DIGITS),
        "type": {"human": round(qualities.human, DIGITS), "cartoon": round(qualities.cartoon, DIGITS)},
    }
