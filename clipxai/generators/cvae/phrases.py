"""Attribute vectors as sentences: the phrase table and the sentence builder.

A CelebA row is forty +1/-1 flags; CLIP reads sentences. Each attribute has a rule: the
*slot* its phrase goes in and the phrase for +1 and for -1 (empty when that value is the
unremarkable default and goes unsaid). A sentence is assembled in one fixed order:

    "a"/"an"  ADJECTIVES  NOUN  "with" WITH-PHRASES  "wearing" WEARING-PHRASES  PLACE

adjectives, "with" phrases and "wearing" phrases each keep the order of the table; lists
join as "x, y and z". So Male=+1, Smiling=+1, Eyeglasses=+1 reads "a smiling man wearing
eyeglasses", and the toy world's Big, Red, Heart, Center reads "a big red heart in the
center", exactly the world's own caption.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

SLOTS = ("adjective", "noun", "with", "wearing", "place")
DEFAULT_NOUN = "person"


class UnknownAttributeWarning(UserWarning):
    """An attribute has no rule in the phrase table; it gets a default phrase."""


@dataclass(frozen=True)
class Rule:
    """Where an attribute's phrase goes, and what +1 and -1 say ("" = nothing)."""

    slot: str
    positive: str
    negative: str = ""


def _r(slot: str, positive: str, negative: str = "") -> Rule:
    return Rule(slot, positive, negative)


# The 40 CelebA attributes, in the order their phrases appear within a slot.
CELEBA_RULES: dict[str, Rule] = {
    # adjectives, before the noun
    "Attractive": _r("adjective", "attractive"),
    "Blurry": _r("adjective", "blurry"),
    "Smiling": _r("adjective", "smiling"),
    "Young": _r("adjective", "young"),
    "Chubby": _r("adjective", "chubby"),
    "Bald": _r("adjective", "bald"),
    # the noun
    "Male": _r("noun", "man", "woman"),
    # "with ..." — hair first, then face, then facial hair and make-up
    "Black_Hair": _r("with", "black hair"),
    "Blond_Hair": _r("with", "blond hair"),
    "Brown_Hair": _r("with", "brown hair"),
    "Gray_Hair": _r("with", "gray hair"),
    "Straight_Hair": _r("with", "straight hair"),
    "Wavy_Hair": _r("with", "wavy hair"),
    "Bangs": _r("with", "bangs"),
    "Receding_Hairline": _r("with", "a receding hairline"),
    "Oval_Face": _r("with", "an oval face"),
    "Pale_Skin": _r("with", "pale skin"),
    "High_Cheekbones": _r("with", "high cheekbones"),
    "Rosy_Cheeks": _r("with", "rosy cheeks"),
    "Double_Chin": _r("with", "a double chin"),
    "Arched_Eyebrows": _r("with", "arched eyebrows"),
    "Bushy_Eyebrows": _r("with", "bushy eyebrows"),
    "Narrow_Eyes": _r("with", "narrow eyes"),
    "Bags_Under_Eyes": _r("with", "bags under the eyes"),
    "Big_Nose": _r("with", "a big nose"),
    "Pointy_Nose": _r("with", "a pointy nose"),
    "Big_Lips": _r("with", "big lips"),
    "Mouth_Slightly_Open": _r("with", "the mouth slightly open"),
    "No_Beard": _r("with", "", "a beard"),          # the flag is negative: -1 means a beard
    "Goatee": _r("with", "a goatee"),
    "Mustache": _r("with", "a mustache"),
    "Sideburns": _r("with", "sideburns"),
    "5_o_Clock_Shadow": _r("with", "a five o'clock shadow"),
    "Heavy_Makeup": _r("with", "heavy makeup"),
    # "wearing ..."
    "Eyeglasses": _r("wearing", "eyeglasses"),
    "Wearing_Hat": _r("wearing", "a hat"),
    "Wearing_Earrings": _r("wearing", "earrings"),
    "Wearing_Lipstick": _r("wearing", "lipstick"),
    "Wearing_Necklace": _r("wearing", "a necklace"),
    "Wearing_Necktie": _r("wearing", "a necktie"),
}

# The toy world's attributes (clipxai.toy.world), as the CelebA-format fixture names them.
# Size before colour, the shape as the noun, the position last: the world's caption order.
TOY_RULES: dict[str, Rule] = {
    "Big": _r("adjective", "big", "small"),
    **{c: _r("adjective", c.lower()) for c in
       ("Red", "Gold", "Pink", "Blue", "Green", "Cyan", "Purple", "White", "Coral", "Rose", "Peach")},
    **{s: _r("noun", s.lower()) for s in
       ("Heart", "Circle", "Square", "Triangle", "Star", "Ring", "Cross", "Mouth")},
    "Left": _r("place", "on the left"),
    "Right": _r("place", "on the right"),
    "Top": _r("place", "at the top"),
    "Bottom": _r("place", "at the bottom"),
    "Center": _r("place", "in the center"),
}

RULES: dict[str, Rule] = {**CELEBA_RULES, **TOY_RULES}


def default_rule(attribute: str) -> Rule:
    """The rule of an attribute the table does not know: "with <its name in words>"."""
    words = re.sub(r"[_\-]+", " ", attribute).strip().lower()
    return Rule("with", words or attribute)


def rules_for(attributes: Sequence[str], warn: bool = True) -> list[Rule]:
    """One rule per attribute; unknown ones get ``default_rule`` and (once each) a warning."""
    out = []
    for name in attributes:
        rule = RULES.get(name)
        if rule is None:
            rule = default_rule(name)
            if warn:
                warnings.warn(f"The attribute '{name}' is not in the phrase table; it reads as "
                              f"\"with {rule.positive}\" when set.", UnknownAttributeWarning, stacklevel=2)
        out.append(rule)
    return out


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class SentenceBuilder:
    """Turns attribute rows of one dataset into sentences (the rules are looked up once)."""

    def __init__(self, attributes: Sequence[str], warn: bool = True):
        self.attributes = list(attributes)
        self.rules = rules_for(self.attributes, warn=warn)
        # table order within a slot: known attributes by their place in RULES, unknown after
        order = {name: i for i, name in enumerate(RULES)}
        self._order = sorted(range(len(self.attributes)),
                             key=lambda i: (order.get(self.attributes[i], len(order)), i))

    def sentence(self, row: Iterable) -> str:
        """The sentence of one row of +1/-1 (or 1/0, or booleans) values."""
        values = [float(v) > 0 for v in row]
        if len(values) != len(self.attributes):
            raise ValueError(f"expected {len(self.attributes)} attribute values, got {len(values)}")
        parts: dict[str, list[str]] = {slot: [] for slot in SLOTS}
        for i in self._order:
            rule = self.rules[i]
            phrase = rule.positive if values[i] else rule.negative
            if phrase:
                parts[rule.slot].append(phrase)
        noun = " ".join(parts["noun"]) or DEFAULT_NOUN
        head = " ".join(parts["adjective"] + [noun])
        text = f"{_article(head)} {head}"
        if parts["with"]:
            text += " with " + _join(parts["with"])
        if parts["wearing"]:
            text += (", wearing " if parts["with"] else " wearing ") + _join(parts["wearing"])
        return " ".join([text, *parts["place"]])

    def sentences(self, rows) -> list[str]:
        return [self.sentence(r) for r in rows]

    def parse(self, text: str) -> list[float]:
        """The +1/-1 vector a sentence states: an attribute takes the value whose phrase the text
        contains (as whole words), else the value that goes unsaid (0 when neither does, as
        for Male in "a smiling person").

        Inverts ``sentence`` for sentences it built, and gives free text ("a smiling woman
        wearing eyeglasses") the attribute vector the attribute conditioning needs.
        """
        def words(s: str) -> str:
            return " " + re.sub(r"[^a-z0-9]+", " ", s.lower()).strip() + " "

        low = words(text)

        def says(phrase: str) -> bool:
            return bool(phrase) and words(phrase) in low

        out = []
        for rule in self.rules:
            if says(rule.positive) and not says(rule.negative):
                out.append(1.0)
            elif says(rule.negative):
                out.append(-1.0)
            elif rule.positive and rule.negative:  # unsaid, and neither value goes unsaid
                out.append(0.0)
            else:  # unsaid: the value whose phrase is empty (for No_Beard that is +1)
                out.append(-1.0 if rule.positive else 1.0)
        return out


def phrase_table_markdown() -> str:
    """The phrase table as a Markdown table (docs and ``clipxai cvae caption --table``)."""
    lines = ["| attribute | slot | +1 | -1 |", "| --- | --- | --- | --- |"]
    for name, rule in RULES.items():
        lines.append(f"| {name} | {rule.slot} | {rule.positive or '—'} | {rule.negative or '—'} |")
    return "\n".join(lines)
